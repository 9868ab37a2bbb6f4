#!/usr/bin/env python3
"""Creates the AWS side in moto (http://127.0.0.1:5000): the bus cloud-orders and a
rule that sends every event on it to the SQS queue to-idc, which the IDC gateway
pulls. Needs boto3 (installed with moto[server])."""
import json

import boto3

kw = dict(endpoint_url="http://127.0.0.1:5000", region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
events = boto3.client("events", **kw)
sqs = boto3.client("sqs", **kw)

events.create_event_bus(Name="cloud-orders")
queue = sqs.create_queue(QueueName="to-idc")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
events.put_rule(Name="to-idc", EventBusName="cloud-orders",
                EventPattern=json.dumps({"source": [{"prefix": ""}]}))
events.put_targets(Rule="to-idc", EventBusName="cloud-orders", Targets=[{"Id": "idc", "Arn": arn}])
# A second queue that only watches the bus, to show what reached AWS.
watch = sqs.create_queue(QueueName="watch")["QueueUrl"]
watch_arn = sqs.get_queue_attributes(QueueUrl=watch, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
events.put_rule(Name="watch", EventBusName="cloud-orders",
                EventPattern=json.dumps({"source": [{"prefix": ""}]}))
events.put_targets(Rule="watch", EventBusName="cloud-orders", Targets=[{"Id": "watch", "Arn": watch_arn}])
print("AWS side ready: bus cloud-orders -> queues to-idc (pulled by Sluice) and watch")
