"""Echo function for the awslambdaric test fixture.

Answers {"echo": <event>}; raises on {"fail": true}, so the real client posts /error.
"""


class EchoFailure(Exception):
    """A named exception, so the test can check the client's errorType exactly."""


def lambda_handler(event, context):
    if isinstance(event, dict) and event.get("fail") is True:
        print("failing on request", flush=True)
        raise EchoFailure("requested failure")
    return {"echo": event}
