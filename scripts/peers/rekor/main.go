// Command rekor-server serves Sigstore's Rekor v1 transparency log (github.com/sigstore/rekor, on Trillian)
// through upstream's library (pkg/api, pkg/generated/restapi), over the same REST API as upstream's
// rekor-server, without the listeners upstream's serve command adds on all interfaces:
//
//   - no Prometheus listener: upstream's `serve` always tries ":2112" (all interfaces, no flag; a failure to
//     bind is ignored), so a test's Rekor listened outside loopback, or silently served no metrics;
//   - no pprof listener (upstream's --enable_pprof opens ":6060"; here the flag is refused);
//   - no config file ($HOME/.rekor-server.yaml, ./rekor-server.yaml) and no environment overrides;
//   - plain HTTP only (upstream's --scheme https and its TLS policy flags live in an internal package this
//     module cannot import), no GCP Cloud Profiling, and upstream's jar/apk metadata size limits (also
//     internal) keep their library default.
//
// Usage: rekor-server serve [flags]   (flag names and defaults as upstream v1.5.5's `serve`)
//
//	rekor-server version
package main

import (
	goflag "flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-openapi/loads"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/sigstore/rekor/pkg/api"
	"github.com/sigstore/rekor/pkg/generated/restapi"
	"github.com/sigstore/rekor/pkg/generated/restapi/operations"
	"github.com/sigstore/rekor/pkg/log"
	"github.com/sigstore/rekor/pkg/types"
	"github.com/sigstore/rekor/pkg/types/alpine"
	alpine_v001 "github.com/sigstore/rekor/pkg/types/alpine/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/cose"
	cose_v001 "github.com/sigstore/rekor/pkg/types/cose/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/dsse"
	dsse_v001 "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	hashedrekord_v001 "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/helm"
	helm_v001 "github.com/sigstore/rekor/pkg/types/helm/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/intoto"
	intoto_v001 "github.com/sigstore/rekor/pkg/types/intoto/v0.0.1"
	intoto_v002 "github.com/sigstore/rekor/pkg/types/intoto/v0.0.2"
	"github.com/sigstore/rekor/pkg/types/jar"
	jar_v001 "github.com/sigstore/rekor/pkg/types/jar/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/rekord"
	rekord_v001 "github.com/sigstore/rekor/pkg/types/rekord/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/rfc3161"
	rfc3161_v001 "github.com/sigstore/rekor/pkg/types/rfc3161/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/rpm"
	rpm_v001 "github.com/sigstore/rekor/pkg/types/rpm/v0.0.1"
	"github.com/sigstore/rekor/pkg/types/tuf"
	tuf_v001 "github.com/sigstore/rekor/pkg/types/tuf/v0.0.1"
	"github.com/sigstore/sigstore/pkg/signature"
)

const upstreamModule = "github.com/sigstore/rekor"

// entryKinds lists the entry kinds (and their versions) this binary serves; importing the packages registers
// each kind's constructor with pkg/types.
var entryKinds = map[string][]string{
	rekord.KIND:       {rekord_v001.APIVERSION},
	rpm.KIND:          {rpm_v001.APIVERSION},
	jar.KIND:          {jar_v001.APIVERSION},
	intoto.KIND:       {intoto_v001.APIVERSION, intoto_v002.APIVERSION},
	cose.KIND:         {cose_v001.APIVERSION},
	rfc3161.KIND:      {rfc3161_v001.APIVERSION},
	alpine.KIND:       {alpine_v001.APIVERSION},
	helm.KIND:         {helm_v001.APIVERSION},
	tuf.KIND:          {tuf_v001.APIVERSION},
	hashedrekord.KIND: {hashedrekord_v001.APIVERSION},
	dsse.KIND:         {dsse_v001.APIVERSION},
}

// The REST operations that --enabled_api_endpoints can name (operationIds of upstream's openapi.yaml).
var operationIDs = []string{
	"searchIndex", "getLogInfo", "getPublicKey", "getLogProof",
	"createLogEntry", "getLogEntryByIndex", "getLogEntryByUUID", "searchLogQuery",
}

// serveFlags declares the settings upstream's root command declares for `serve` (same names, defaults and
// meaning) that the library reads through viper.
func serveFlags() (*pflag.FlagSet, error) {
	fs := pflag.NewFlagSet("rekor-server serve", pflag.ContinueOnError)
	fs.String("log_type", "dev", "logger type to use (dev/prod)")
	fs.String("trace-string-prefix", "", "prefix of the 'trace' field in structured logs")
	fs.Bool("enable_pprof", false, "refused: this build serves no pprof listener")

	fs.String("trillian_log_server.address", "127.0.0.1", "Trillian log server address")
	fs.Uint16("trillian_log_server.port", 8090, "Trillian log server port")
	fs.Uint("trillian_log_server.tlog_id", 0, "Trillian tree id")
	fs.String("trillian_log_server.sharding_config", "", "path to config file for inactive shards, in JSON or YAML")
	fs.String("trillian_log_server.grpc_default_service_config", "", "JSON gRPC service config for the Trillian clients")
	fs.String("trillian_log_server.tls_ca_cert", "", "CA certificate for TLS connections to Trillian")
	fs.Bool("trillian_log_server.tls", false, "use TLS when connecting to Trillian")

	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	fs.String("rekor_server.hostname", hostname, "public hostname of instance")
	fs.String("rekor_server.address", "127.0.0.1", "address to bind to")
	fs.Uint16("port", 3000, "port to bind to")
	fs.String("scheme", "http", "listener scheme: only http in this build")
	fs.String("rekor_server.signer", "memory", "signer: awskms://, azurekms://, gcpkms://, hashivault://, memory, tink, or a PEM private key file")
	fs.Uint("rekor_server.signer.gcpkms.retries", 0, "number of retries for GCP KMS requests")
	fs.Uint("rekor_server.signer.gcpkms.timeout", 0, "RPC timeout per GCP KMS call in seconds (0: none)")
	fs.String("rekor_server.signer-passwd", "", "password decrypting the signer private key")
	fs.String("rekor_server.tink_kek_uri", "", "key encryption key of the Tink keyset")
	fs.String("rekor_server.tink_keyset_path", "", "path to the encrypted Tink keyset")
	fs.String("rekor_server.new_entry_publisher", "", "pub/sub URL notified of new entries (gcppubsub)")
	fs.Bool("rekor_server.publish_events_protobuf", false, "publish events in Protobuf wire format")
	fs.Bool("rekor_server.publish_events_json", false, "publish events in CloudEvents JSON format")

	fs.Bool("enable_retrieve_api", true, "enables index API endpoint (deprecated: use enabled_api_endpoints searchIndex)")
	fs.String("search_index.storage_provider", "redis", "index storage provider: redis or mysql")
	fs.String("redis_server.address", "127.0.0.1", "Redis server address")
	fs.Uint16("redis_server.port", 6379, "Redis server port")
	fs.String("redis_server.password", "", "Redis server password")
	fs.Bool("redis_server.enable-tls", false, "use TLS to the Redis endpoint")
	fs.Bool("redis_server.insecure-skip-verify", false, "skip TLS verification of the Redis endpoint")
	fs.String("search_index.mysql.dsn", "", "DSN for index storage using MySQL")
	fs.Duration("search_index.mysql.conn_max_idletime", 0, "maximum connection idle time")
	fs.Duration("search_index.mysql.conn_max_lifetime", 0, "maximum connection lifetime")
	fs.Int("search_index.mysql.read.max_open_connections", 0, "maximum open connections in the index read pool")
	fs.Int("search_index.mysql.read.max_idle_connections", 0, "maximum idle connections in the index read pool")
	fs.Int("search_index.mysql.write.max_open_connections", 0, "maximum open connections in the index write pool")
	fs.Int("search_index.mysql.write.max_idle_connections", 0, "maximum idle connections in the index write pool")
	fs.Int("search_index.mysql.max_open_connections", 0, "deprecated: split 70/30 across the write/read pools")
	fs.Int("search_index.mysql.max_idle_connections", 0, "deprecated: split 70/30 across the write/read pools")

	fs.Bool("enable_attestation_storage", false, "enables rich attestation storage")
	fs.String("attestation_storage_bucket", "", "URL of the attestation storage bucket")
	fs.Int("max_attestation_size", 100*1024, "max size for attestation storage, in bytes")
	fs.StringSlice("enabled_api_endpoints", operationIDs, "API endpoints to enable, by operationId")
	fs.StringSlice("enabled_entry_types", types.ListSupportedKinds(), "entry kinds accepted for new submissions")
	fs.Uint64("max_request_body_size", 0, "maximum HTTP request body size in bytes (0: unlimited)")
	fs.String("http-request-id-header-name", middleware.RequestIDHeader, "HTTP request header used as request correlation ID")

	algorithms := make([]string, 0, len(api.AllowedClientSigningAlgorithms))
	for _, alg := range api.AllowedClientSigningAlgorithms {
		name, err := signature.FormatSignatureAlgorithmFlag(alg)
		if err != nil {
			return nil, fmt.Errorf("naming client signing algorithm %v: %w", alg, err)
		}
		algorithms = append(algorithms, name)
	}
	sort.Strings(algorithms)
	fs.StringSlice("client-signing-algorithms", algorithms, "signing algorithms accepted from clients: "+strings.Join(algorithms, ", "))
	return fs, nil
}

// upstreamVersion is the rekor module version this binary was built from.
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
	fmt.Fprintln(os.Stderr, "usage: rekor-server serve [flags] | rekor-server version")
	if fs, err := serveFlags(); err == nil {
		fmt.Fprintf(os.Stderr, "\nserve flags:\n%s", fs.FlagUsages())
	}
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
		fmt.Printf("rekor-server (kibaship loopback build) of %s %s\n", upstreamModule, upstreamVersion())
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "rekor-server: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

// enabledKinds checks --enabled_entry_types against the kinds compiled in.
func enabledKinds(requested []string) ([]string, error) {
	seen := map[string]bool{}
	out := []string{}
	for _, kind := range requested {
		if _, ok := entryKinds[kind]; !ok {
			known := make([]string, 0, len(entryKinds))
			for k := range entryKinds {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("unknown entry type %q; compiled-in types are: %s", kind, strings.Join(known, ", "))
		}
		if !seen[kind] {
			seen[kind] = true
			out = append(out, kind)
		}
	}
	return out, nil
}

func serve(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "rekor-server serve: "+format+"\n", a...)
		return 2
	}
	fs, err := serveFlags()
	if err != nil {
		return fail("%v", err)
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return fail("%v", err)
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	if err := viper.BindPFlags(fs); err != nil {
		return fail("binding flags: %v", err)
	}
	if viper.GetBool("enable_pprof") {
		return fail("--enable_pprof is not supported by this build (it serves no pprof or metrics listener; use upstream's rekor-server for that)")
	}
	if scheme := viper.GetString("scheme"); scheme != "http" {
		return fail("--scheme %q is not supported by this build: it serves plain HTTP only (upstream's TLS settings live in an internal package)", scheme)
	}
	log.ConfigureLogger(viper.GetString("log_type"), viper.GetString("trace-string-prefix"))
	// glog (pulled in by Trillian's client) complains about logging before flag.Parse: parse its empty set.
	_ = goflag.CommandLine.Parse([]string{})
	log.Logger.Infof("starting rekor-server (kibaship loopback build, %s %s): REST API only, no metrics or pprof listener",
		upstreamModule, upstreamVersion())
	middleware.RequestIDHeader = viper.GetString("http-request-id-header-name")

	maxAttestation := viper.GetInt("max_attestation_size")
	intoto_v001.SetMaxAttestationSize(maxAttestation)
	intoto_v002.SetMaxAttestationSize(maxAttestation)
	cose_v001.SetMaxAttestationSize(maxAttestation)

	kinds, err := enabledKinds(viper.GetStringSlice("enabled_entry_types"))
	if err != nil {
		return fail("invalid --enabled_entry_types: %v", err)
	}
	types.SetAllowedKindsForSubmission(kinds)
	for _, k := range kinds {
		log.Logger.Infof("Loading support for entry type '%v' versions %v", k, entryKinds[k])
	}

	doc, err := loads.Embedded(restapi.SwaggerJSON, restapi.FlatSwaggerJSON)
	if err != nil {
		return fail("loading the embedded OpenAPI document: %v", err)
	}
	server := restapi.NewServer(operations.NewRekorServerAPI(doc))
	defer func() {
		if err := server.Shutdown(); err != nil {
			log.Logger.Error(err)
		}
	}()
	server.Host = viper.GetString("rekor_server.address")
	server.Port = int(viper.GetUint("port"))
	server.EnabledListeners = []string{"http"}
	server.TLSHost = server.Host

	api.ConfigureAPI(viper.GetInt64("trillian_log_server.tlog_id"))
	server.ConfigureAPI()

	start := time.Now()
	if err := server.Serve(); err != nil && err != http.ErrServerClosed {
		log.Logger.Errorf("serving the REST API (after %v): %v", time.Since(start).Round(time.Millisecond), err)
		return 1
	}
	return 0
}
