// Command koel-dashboards writes koel's Grafana dashboards, defined as code
// in package grafana, as JSON files for Grafana's file provisioning:
//
//	go run ./cmd/koel-dashboards [-out grafana/dashboards]
//
// `go generate ./grafana` runs it; grafana's tests fail when the committed
// files differ from what it writes.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/koelvoice/koel/grafana"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("koel-dashboards", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "grafana/dashboards", "directory to write the dashboard JSON files into")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "koel-dashboards: unexpected arguments %q\n", fs.Args())
		return 2
	}
	files, err := grafana.Write(*out)
	if err != nil {
		fmt.Fprintln(stderr, "koel-dashboards:", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s/%s (%d bytes)\n", *out, f.Name, len(f.JSON))
	}
	return 0
}
