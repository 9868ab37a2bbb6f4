"""Sends the load benchmark's events one request at a time (for instruction counts).

python3 send_events.py PORT BUS single|batch REQUESTS TAG
single: binary.lua's event per request; batch: batch.lua's 100 structured events.
"""
import http.client
import sys

port, bus, kind, n, tag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", int(port))
data = '{"order":{"id":"o-1","amount":120.5,"currency":"EUR","note":"' + "x" * 430 + '"}}'
for r in range(n):
    if kind == "single":
        headers = {"ce-specversion": "1.0", "ce-id": f"{tag}-{r}", "ce-source": "/bench",
                   "ce-type": "order.paid", "content-type": "application/json"}
        body = data
    else:
        headers = {"content-type": "application/cloudevents-batch+json"}
        body = "[" + ",".join(
            '{"specversion":"1.0","id":"%s-%d-%d","source":"/bench","type":"order.paid",'
            '"datacontenttype":"application/json","data":{"order":{"id":"o-%d","amount":120.5,'
            '"currency":"EUR","note":"%s"}}}' % (tag, r, i, i, "x" * 360)
            for i in range(1, 101)) + "]"
    conn.request("POST", f"/buses/{bus}/events", body=body, headers=headers)
    resp = conn.getresponse()
    answer = resp.read()
    assert resp.status == 202, (resp.status, answer[:300])
