// Command ggcr-registry serves go-containerregistry's registry (pkg/registry) on a loopback address with
// the OCI referrers API switched on. `crane registry serve` (the same registry) does not enable that API
// in crane v0.22.1, so the tests run this instead. Flags mirror `crane registry serve`.
//
// go-containerregistry v0.22.1's referrers handler sets each descriptor's artifactType to the referrer's
// config.mediaType even when the manifest has an artifactType, and ignores the ?artifactType= filter.
// The distribution spec says: the manifest's artifactType if present, else config.mediaType; and a
// registry that filters says so with `OCI-Filters-Applied: artifactType`. By default this command corrects
// both on the way out (storage and listing stay upstream's); --raw-referrers serves upstream's answer as is.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// specReferrers wraps the registry and rewrites GET /v2/<name>/referrers/<digest> answers.
type specReferrers struct{ inner http.Handler }

func (s specReferrers) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	elems := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	if req.Method != http.MethodGet || len(elems) < 4 || elems[0] != "v2" || elems[len(elems)-2] != "referrers" {
		s.inner.ServeHTTP(w, req)
		return
	}
	repo := strings.Join(elems[1:len(elems)-2], "/")
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return
	}
	var index map[string]json.RawMessage
	var descs []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &index); err != nil {
		http.Error(w, "ggcr-registry: upstream referrers answer is not JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if err := json.Unmarshal(index["manifests"], &descs); err != nil {
		http.Error(w, "ggcr-registry: upstream referrers answer has no manifests list: "+err.Error(), http.StatusInternalServerError)
		return
	}
	wanted := req.URL.Query().Get("artifactType")
	kept := []map[string]any{}
	for _, desc := range descs {
		digest, _ := desc["digest"].(string)
		artifactType, err := s.artifactType(repo, digest)
		if err != nil {
			http.Error(w, "ggcr-registry: "+err.Error(), http.StatusInternalServerError)
			return
		}
		desc["artifactType"] = artifactType
		if wanted == "" || artifactType == wanted {
			kept = append(kept, desc)
		}
	}
	body, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     kept,
	})
	if err != nil {
		http.Error(w, "ggcr-registry: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if wanted != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// artifactType reads the referrer's manifest from the registry: its artifactType, else config.mediaType.
func (s specReferrers) artifactType(repo, digest string) (string, error) {
	req := httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/manifests/"+digest, nil)
	rec := httptest.NewRecorder()
	s.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("referrer %s of %s: manifest GET answered %d", digest, repo, rec.Code)
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		return "", fmt.Errorf("referrer %s of %s: manifest is not JSON: %w", digest, repo, err)
	}
	if m.ArtifactType != "" {
		return m.ArtifactType, nil
	}
	return m.Config.MediaType, nil
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = bytes.NewReader(rec.Body.Bytes()).WriteTo(w)
}

func main() {
	address := flag.String("address", "127.0.0.1:0", "address to listen on (host:port)")
	disk := flag.String("disk", "", "directory for blobs (default: in memory; manifests are always in memory)")
	raw := flag.Bool("raw-referrers", false, "serve go-containerregistry's referrers answers unchanged (artifactType = config.mediaType, no filtering)")
	flag.Parse()
	if flag.NArg() != 0 {
		log.Fatalf("ggcr-registry: unexpected arguments %q", flag.Args())
	}

	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatalf("ggcr-registry: listen on %s: %v", *address, err)
	}

	blobs := registry.NewInMemoryBlobHandler()
	if *disk != "" {
		if err := os.MkdirAll(*disk, 0o755); err != nil {
			log.Fatalf("ggcr-registry: create %s: %v", *disk, err)
		}
		blobs = registry.NewDiskBlobHandler(*disk)
	}

	var handler http.Handler = registry.New(registry.WithBlobHandler(blobs), registry.WithReferrersSupport(true))
	mode := "spec artifactType + filter"
	if !*raw {
		handler = specReferrers{inner: handler}
	} else {
		mode = "raw upstream answers"
	}
	server := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: handler}
	fmt.Fprintf(os.Stderr, "ggcr-registry: serving on %s (referrers API on: %s)\n", listener.Addr(), mode)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		log.Fatalf("ggcr-registry: %v", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		log.Fatalf("ggcr-registry: shutdown: %v", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("ggcr-registry: %v", err)
	}
}
