#!/usr/bin/env bash
# Creates a bus, a connection, an API destination, a rule and its target with the AWS CLI
# (pip install awscli), puts an event, then subscribes with the CloudEvents
# Subscriptions API; every delivery reaches the dev echo target (/dev/echo).
set -euo pipefail
url=http://127.0.0.1:8080
# The CLI signs every request; with `aws.auth: none` any key will do.
export AWS_ACCESS_KEY_ID=example AWS_SECRET_ACCESS_KEY=example AWS_DEFAULT_REGION=us-east-1
events() { aws --endpoint-url "$url" events "$@"; }

events create-event-bus --name shop
conn=$(events create-connection --name echo --authorization-type API_KEY \
  --auth-parameters '{"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "demo"}}' \
  --query ConnectionArn --output text)
# As JSON: the CLI (v1) would fetch an http:// argument and send what it read.
dest=$(events create-api-destination --query ApiDestinationArn --output text --cli-input-json \
  "{\"Name\": \"echo\", \"ConnectionArn\": \"$conn\", \"InvocationEndpoint\": \"$url/dev/echo\", \"HttpMethod\": \"POST\"}")
events put-rule --name big-orders --event-bus-name shop \
  --event-pattern '{"detail-type": ["order.paid"], "detail": {"total": [{"numeric": [">", 100]}]}}'
events put-targets --rule big-orders --event-bus-name shop \
  --targets "[{\"Id\": \"echo\", \"Arn\": \"$dest\", \"InputPath\": \"$.detail\"}]"
# Delivered (total > 100) as {"order": 1, "total": 250}, with the x-api-key header.
events put-events --entries '[{"EventBusName": "shop", "Source": "shop", "DetailType": "order.paid", "Detail": "{\"order\": 1, \"total\": 250}"},
                              {"EventBusName": "shop", "Source": "shop", "DetailType": "order.paid", "Detail": "{\"order\": 2, \"total\": 20}"}]'
# The same rule, as the native API shows it.
curl -sS "$url/api/v1/buses/shop/rules/big-orders"; echo

# A CloudEvents subscription on bus orders, then an event it selects.
curl -sS -i "$url/subscriptions" -H 'content-type: application/json' \
  -d "{\"protocol\": \"HTTP\", \"sink\": \"$url/dev/echo\", \"types\": [\"order.shipped\"],
       \"filters\": [{\"prefix\": {\"subject\": \"eu/\"}}], \"config\": {\"bus\": \"orders\"}}"
echo
curl -sS -i "$url/buses/orders/events" -H 'content-type: application/cloudevents+json' \
  -d '{"specversion": "1.0", "id": "ship-1", "source": "/shop", "type": "order.shipped", "subject": "eu/1001"}'
echo
