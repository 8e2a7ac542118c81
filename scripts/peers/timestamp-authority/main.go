// Command timestamp-server serves Sigstore's timestamp authority (github.com/sigstore/timestamp-authority/v2,
// RFC 3161 over the same REST API as upstream's timestamp-server) through upstream's library
// (pkg/server.NewRestAPIServer), without the listeners upstream's serve command always adds:
//
//   - no Prometheus listener: upstream's `serve` starts one on ":2112" (all interfaces, no flag to move or
//     disable it) and exits when that port is taken, so only one TSA could run per machine and it listened
//     outside loopback;
//   - no pprof listener (upstream's --enable-pprof opens ":6060"; here the flag is refused);
//   - no config file ($HOME/.timestamp-server.yaml, ./timestamp-server.yaml) and no environment overrides:
//     a test server is configured by its command line only.
//
// Usage: timestamp-server serve [flags]   (flag names and defaults as upstream v2.1.5's `serve`)
//
//	timestamp-server version
//
// The REST server is the only listener: --host/--port (default host "localhost"), as upstream.
package main

import (
	goflag "flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sigstore/timestamp-authority/v2/pkg/log"
	"github.com/sigstore/timestamp-authority/v2/pkg/ntpmonitor"
	"github.com/sigstore/timestamp-authority/v2/pkg/server"
)

const upstreamModule = "github.com/sigstore/timestamp-authority/v2"

// serveFlags declares the settings upstream's root command declares (same names, defaults and meaning) that
// pkg/api and pkg/server read through viper. The listener flags (--host, --port, --scheme, --read-timeout,
// --write-timeout, TLS ...) come from the generated REST server package, which registers them on pflag's
// global set when it is imported; they are merged in after these, so a name declared here wins (as with
// upstream's cobra command, whose --cleanup-timeout default of 620s overrides the generated 10s).
func serveFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("timestamp-server serve", pflag.ContinueOnError)
	fs.String("log-type", "dev", "logger type to use (dev/prod)")
	fs.Bool("enable-pprof", false, "refused: this build serves no pprof listener")
	fs.Bool("http-ping-only", false, "serve only /ping in the http server")
	fs.Bool("enforce-intermediate-eku", true, "enforce requirement for intermediate certificates to have timestamping EKU")
	fs.Bool("use-http-201", false, "use HTTP 201 Created instead of 200 OK for timestamp responses")
	fs.String("timestamp-signer", "memory", "timestamping authority signer: kms, tink, memory or file (memory and file are for testing)")
	fs.String("timestamp-signer-hash", "sha256", "hash algorithm of the signer: sha256, sha384 or sha512 (ignored for memory)")
	fs.Bool("include-chain-in-response", false, "include the issuing chain in the response when the request sets certReq")
	fs.String("kms-key-resource", "", "KMS key for signing timestamp responses")
	fs.String("tink-key-resource", "", "KMS key decrypting the Tink keyset")
	fs.String("tink-keyset-path", "", "path to the KMS-encrypted Tink keyset")
	fs.String("tink-hcvault-token", "", "token for HashiCorp Vault API calls")
	fs.String("certificate-chain-path", "", "PEM certificate chain certifying the KMS, Tink or file signer key")
	fs.String("file-signer-key-path", "", "PEM private key file (PKCS#1, PKCS#8, RFC 5915)")
	fs.String("file-signer-passwd", "", "password decrypting the private key file")
	fs.String("ntp-monitoring", "", "file configuring NTP monitoring (upstream's default configuration if empty)")
	fs.Bool("disable-ntp-monitoring", false, "disable NTP monitoring")
	fs.String("http-request-id-header-name", middleware.RequestIDHeader, "HTTP request header used as request correlation ID")
	fs.Uint64("max-request-body-size", 1048576, "maximum request body size in bytes")
	fs.Duration("cleanup-timeout", 620*time.Second, "grace period before idle connections are closed")
	fs.String("default-policy-oid", "1.3.6.1.4.1.57264.2", "policy OID used when a request names none")
	fs.StringSlice("accepted-policy-oids", []string{"1.3.6.1.4.1.57264.2"}, "policy OIDs accepted in requests")
	fs.Bool("allow-custom-extensions", false, "copy custom request extensions into the signed timestamp")
	// The generated REST server's listener flags (importing pkg/server registered them globally).
	fs.AddFlagSet(pflag.CommandLine)
	return fs
}

// upstreamVersion is the timestamp-authority module version this binary was built from.
func upstreamVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == upstreamModule {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: timestamp-server serve [flags] | timestamp-server version\n\nserve flags:\n%s",
		serveFlags().FlagUsages())
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "version", "--version":
		fmt.Printf("timestamp-server (kibaship loopback build) of %s %s\n", upstreamModule, upstreamVersion())
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "timestamp-server: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func serve(args []string) int {
	fs := serveFlags()
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		fmt.Fprintf(os.Stderr, "timestamp-server serve: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "timestamp-server serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := viper.BindPFlags(fs); err != nil {
		fmt.Fprintf(os.Stderr, "timestamp-server serve: binding flags: %v\n", err)
		return 2
	}
	if viper.GetBool("enable-pprof") {
		fmt.Fprintln(os.Stderr, "timestamp-server serve: --enable-pprof is not supported by this build (it serves no pprof or metrics listener; use upstream's timestamp-server for that)")
		return 2
	}
	log.ConfigureLogger(viper.GetString("log-type"))
	// glog (pulled in by dependencies) complains about logging before flag.Parse: parse its empty set.
	_ = goflag.CommandLine.Parse([]string{})
	log.Logger.Infof("starting timestamp-server (kibaship loopback build, %s %s): REST API only, no metrics or pprof listener",
		upstreamModule, upstreamVersion())

	var ntpm *ntpmonitor.NTPMonitor
	if viper.GetBool("disable-ntp-monitoring") {
		log.Logger.Info("ntp monitoring disabled")
	} else {
		var err error
		ntpm, err = ntpmonitor.New(viper.GetString("ntp-monitoring"))
		if err != nil {
			log.Logger.Errorf("initializing ntp monitor: %v", err)
			return 1
		}
		go ntpm.Start()
	}

	middleware.RequestIDHeader = viper.GetString("http-request-id-header-name")

	srv := server.NewRestAPIServer(
		viper.GetString("host"),
		int(viper.GetUint("port")),
		viper.GetStringSlice("scheme"),
		viper.GetBool("http-ping-only"),
		viper.GetDuration("read-timeout"),
		viper.GetDuration("write-timeout"),
	)
	srv.CleanupTimeout = viper.GetDuration("cleanup-timeout")
	defer func() {
		if err := srv.Shutdown(); err != nil {
			log.Logger.Error(err)
		}
		if ntpm != nil {
			ntpm.Stop()
		}
	}()
	if err := srv.Serve(); err != nil && err != http.ErrServerClosed {
		log.Logger.Errorf("serving the REST API: %v", err)
		return 1
	}
	return 0
}
