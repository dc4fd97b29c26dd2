#!/bin/sh
# Integration tests against the running stack; JUnit XML in /results.
mkdir -p /results
failures=0
cases=''
check() { # name url expected-text
  body=$(timeout 10 wget -q -O - "$2" 2>&1)
  if echo "$body" | grep -q "$3"; then
    echo "PASS $1"
    cases="$cases<testcase classname=\"shop\" name=\"$1\"/>"
  else
    echo "FAIL $1: expected '$3' from $2, got: $body"
    failures=$((failures + 1))
    cases="$cases<testcase classname=\"shop\" name=\"$1\"><failure message=\"expected $3\"/></testcase>"
  fi
}
check web-serves-home http://web:8080/ '<h1>Shop</h1>'
check api-reports-status http://api:8080/cgi-bin/status '"service":"api"'
check api-reaches-cache http://api:8080/cgi-bin/status '"cache":"up"'
echo "<?xml version=\"1.0\"?><testsuite name=\"shop\" tests=\"3\" failures=\"$failures\">$cases</testsuite>" > /results/junit.xml
exit $failures
