// Package examples holds consumers of the published tokens written in other languages
// than Go, as a Lambda in that language would read them: examples/python (boto3) and
// examples/node (AWS SDK for JavaScript v3). Go programs use pkg/tokens instead.
//
// The package has no Go code of its own. Its integration test runs each example as a
// process against LocalStack and a fake partner API, and checks that it follows the
// 401 rule of docs/consumers.md. The examples' dependencies are pinned in
// examples/python/requirements.txt and examples/node/package-lock.json; `make test`
// installs them (`make examples-deps`).
package examples
