//! Placeholder until the CESQL module lands.

#[derive(Debug, Clone)]
pub struct Sql;

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    String(String),
    Integer(i32),
    Boolean(bool),
}

impl Sql {
    pub fn parse(_text: &str) -> Result<Sql, String> {
        Err("CESQL is not supported yet".into())
    }
    pub fn attributes(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn matches(&self, _attr: &dyn Fn(&str) -> Option<SqlValue>) -> bool {
        false
    }
}
