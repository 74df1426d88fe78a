"""A Python handler (runtime python3.11 or python3.12, handler lambda_function.lambda_handler)."""

import platform


def lambda_handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"python handler: request {context.aws_request_id}, {context.get_remaining_time_in_millis()} ms left")
    return {"message": f"hello, {name}", "python": platform.python_version()}
