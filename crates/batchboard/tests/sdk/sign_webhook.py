"""Signs a webhook with the `standardwebhooks` package (an implementation
independent of Batchboard's): prints the `webhook-signature` header for
argv = secret, msg_id, unix timestamp, with the body on standard input."""
import datetime
import sys

from standardwebhooks.webhooks import Webhook

secret, msg_id, ts = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = sys.stdin.read()
when = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
print(Webhook(secret).sign(msg_id, when, body))
