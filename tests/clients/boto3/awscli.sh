#!/bin/sh
# The aws CLI (v1, from the test venv) against a running `hearth serve`
# (tests/daemon.rs starts it): create-function from fileb://, invoke with a raw JSON
# payload (`--cli-binary-format raw-in-base64-out` on CLI v2), list-functions,
# delete-function.
#
# Usage: awscli.sh AWS_BIN ENDPOINT_URL EXAMPLES_DIR
# Environment: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (the daemon's key).
# Each step is printed before it runs; exits non-zero at the first failing step.
set -eu
AWS=$1 ENDPOINT=$2 EXAMPLES=$3
export AWS_DEFAULT_REGION=us-east-1 AWS_MAX_ATTEMPTS=1 AWS_RETRY_MODE=standard
unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE || true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { echo "step: $*"; }
fail() { echo "awscli failed: $*" >&2; exit 1; }
aws_() { "$AWS" --endpoint-url "$ENDPOINT" --cli-read-timeout 120 --output json "$@"; }
PY=$(dirname "$AWS")/python
# CLI v2 base64-decodes a blob given on the command line unless told otherwise; v1 (what
# pip installs as `awscli`) sends it raw and does not know the option.
RAW=""
case $("$AWS" --version 2>&1) in aws-cli/1.*) ;; *) RAW="--cli-binary-format raw-in-base64-out" ;; esac

step "zip examples/python"
"$PY" - "$EXAMPLES/python/lambda_function.py" "$work/fn.zip" <<'PYEOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w") as z:
    info = zipfile.ZipInfo("lambda_function.py")
    info.external_attr = 0o100644 << 16
    z.writestr(info, open(sys.argv[1]).read())
PYEOF

step "create-function --zip-file fileb://"
aws_ lambda create-function --function-name cli-fn --runtime python3.11 \
  --role arn:aws:iam::000000000000:role/lambda --handler lambda_function.lambda_handler \
  --timeout 60 --zip-file "fileb://$work/fn.zip" >"$work/create.json" \
  || fail "create-function"
grep -q '"FunctionName": "cli-fn"' "$work/create.json" || fail "create-function output: $(cat "$work/create.json")"

step "wait function-active-v2"
aws_ lambda wait function-active-v2 --function-name cli-fn || fail "wait function-active-v2"

step "invoke ${RAW:+$RAW }--payload"
aws_ lambda invoke --function-name cli-fn $RAW \
  --payload '{"name": "cli"}' "$work/out.json" >"$work/invoke.json" || fail "invoke"
grep -q '"StatusCode": 200' "$work/invoke.json" || fail "invoke status: $(cat "$work/invoke.json")"
grep -q '"ExecutedVersion": "\$LATEST"' "$work/invoke.json" || fail "invoke version: $(cat "$work/invoke.json")"
grep -q '"message": "hello, cli"' "$work/out.json" || fail "invoke payload: $(cat "$work/out.json")"

step "invoke --log-type Tail"
aws_ lambda invoke --function-name cli-fn $RAW \
  --payload '{}' --log-type Tail --query LogResult --output text "$work/out2.json" >"$work/log.b64" \
  || fail "invoke --log-type Tail"
base64 -d "$work/log.b64" | grep -q "REPORT RequestId:" || fail "tail log: $(cat "$work/log.b64")"

step "list-functions"
aws_ lambda list-functions --query 'Functions[].FunctionName' --output text >"$work/list.txt" \
  || fail "list-functions"
[ "$(cat "$work/list.txt")" = "cli-fn" ] || fail "list-functions: $(cat "$work/list.txt")"

step "get-function of a missing function fails with ResourceNotFoundException"
if aws_ lambda get-function --function-name nope 2>"$work/err.txt"; then fail "get-function nope succeeded"; fi
grep -q ResourceNotFoundException "$work/err.txt" || fail "get-function nope: $(cat "$work/err.txt")"

step "delete-function"
aws_ lambda delete-function --function-name cli-fn >/dev/null || fail "delete-function"
[ -z "$(aws_ lambda list-functions --query 'Functions[].FunctionName' --output text)" ] \
  || fail "cli-fn still listed"
echo "awscli: ok"
