// Command s3server runs an S3-compatible server (gofakes3, objects in
// memory) on a local address for the test suite: scripts/test starts it
// and passes its URL to the tests in ABACUS_TEST_S3_URL. Not for
// production data.
//
//	s3server -addr 127.0.0.1:0 -url-file /tmp/s3.url
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	urlFile := flag.String("url-file", "", "write the server's URL to this file once it listens")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	if *urlFile != "" {
		if err := os.WriteFile(*urlFile, []byte(url+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(url)
	srv := &http.Server{Handler: gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog())).Server(),
		ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
