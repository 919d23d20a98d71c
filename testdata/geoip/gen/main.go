// Command gen writes the test GeoIP databases in testdata/geoip.
//
//	go run ./testdata/geoip/gen
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/portcullis/portcullis/plugins/geoip/geoiptest"
)

func main() {
	out := flag.String("out", "testdata/geoip", "directory to write the databases into")
	flag.Parse()
	if err := geoiptest.Generate(*out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
