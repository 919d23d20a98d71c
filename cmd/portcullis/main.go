// Command portcullis is the Portcullis login gateway.
//
//	portcullis serve --config FILE      run the gateway
//	portcullis check --config FILE      report every problem in a configuration
//	portcullis demo [--data DIR]        gateway + sample apps + sample customers
//	portcullis admin user add|list|unlock|phone --config FILE ...
//	portcullis policy test [DIR] | eval --point POINT --input FILE | replay --log FILE --dir DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis/portcullis/config"
)

const usage = `usage: portcullis <command> [flags]

commands:
  serve  --config FILE            run the gateway
  check  --config FILE            check a configuration, reporting every problem
  demo   [--data DIR] [--addr A]  run the gateway with sample apps and customers
  admin  user add|list|unlock|phone
                                  manage customer profiles and their security phones (--config FILE)
  admin  keys list|rotate         list or rotate the assertion signing keys (--config FILE)
  admin  --server URL --token-file F user unlock|phone|sessions|devices|decisions, decision why, keys rotate
                                  the same over a running gateway's admin API (several replicas, containers)
  policy test [DIR]               run the Rego policy tests
  policy eval --point P --input F decide one input and show which rules fired (--explain: why, rule by rule)
  policy audit [--format F]       judge the policy against NIST SP 800-63B-4 and OWASP ASVS 5.0
  policy replay --log F --dir D   decide logged inputs with a candidate policy and report what changes
  policy why --log F --id ID      find a logged decision and explain it with today's policy
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if xe, ok := errors.AsType[*exitError](err); ok {
		report(os.Stderr, err)
		os.Exit(xe.status)
	}
	if err != nil {
		report(os.Stderr, err)
		os.Exit(1)
	}
}

// report prints the error run returned. A configuration's problems come one
// to a line, FILE:LINE:COLUMN: PATH: MESSAGE, the way compilers print theirs
// (editors jump to each).
func report(w io.Writer, err error) {
	if cerr, ok := errors.AsType[*config.Error](err); ok {
		fmt.Fprintln(w, cerr)
		return
	}
	fmt.Fprintln(w, "portcullis:", err)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "admin":
		return cmdAdmin(ctx, args[1:], stdin, stdout, stderr)
	case "policy":
		return cmdPolicy(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
