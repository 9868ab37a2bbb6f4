-- wrk script: a batch of 100 structured CloudEvents of ~500 bytes each per request.
local events = {}
for i = 1, 100 do
  events[i] = '{"specversion":"1.0","id":"e-' .. i .. '","source":"/bench","type":"order.paid",'
    .. '"datacontenttype":"application/json","data":{"order":{"id":"o-' .. i
    .. '","amount":120.5,"currency":"EUR","note":"' .. string.rep("x", 360) .. '"}}}'
end
wrk.method = "POST"
wrk.body = "[" .. table.concat(events, ",") .. "]"
wrk.headers["content-type"] = "application/cloudevents-batch+json"
