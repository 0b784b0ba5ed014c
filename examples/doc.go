// Package examples holds the end-to-end test of the runnable example
// programs in its subdirectories (httpserver, httpclient, p2p, grpc), which use
// only the public API of packages mtls and grpccreds (and pairing for keys in
// the tests).
package examples
