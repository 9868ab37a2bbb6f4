#!/usr/bin/env python3
"""`aws.py put`: publishes an event on the moto bus cloud-orders (as an AWS producer
would). `aws.py watch`: prints (and removes) what reached the bus, from the queue watch."""
import json
import sys

import boto3

kw = dict(endpoint_url="http://127.0.0.1:5000", region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")

if sys.argv[1:] == ["put"]:
    out = boto3.client("events", **kw).put_events(Entries=[{
        "Source": "com.example.cloudshop", "DetailType": "order.created",
        "Detail": json.dumps({"order": "aws-1", "amount": 12}), "EventBusName": "cloud-orders"}])
    print("put on AWS:", out["Entries"])
elif sys.argv[1:] == ["watch"]:
    sqs = boto3.client("sqs", **kw)
    url = sqs.get_queue_url(QueueName="watch")["QueueUrl"]
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            body = json.loads(m["Body"])
            print(body["source"], body["detail-type"], json.dumps(body["detail"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
else:
    sys.exit("usage: aws.py put|watch")
