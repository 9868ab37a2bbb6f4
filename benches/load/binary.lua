-- wrk script: one binary-mode CloudEvent per request, ~500-byte JSON body, unique ids.
local counter = 0
local body = '{"order":{"id":"o-1","amount":120.5,"currency":"EUR","note":"' .. string.rep("x", 430) .. '"}}'

request = function()
  counter = counter + 1
  local headers = {
    ["ce-specversion"] = "1.0",
    ["ce-id"] = tostring(counter),
    ["ce-source"] = "/bench",
    ["ce-type"] = "order.paid",
    ["content-type"] = "application/json",
  }
  return wrk.format("POST", nil, headers, body)
end
