package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// start runs echo on ephemeral loopback ports and returns the address of each server.
func start(t *testing.T) map[string]net.Addr {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	cfg := Config{HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", TCP: "127.0.0.1:0", GRPC: "127.0.0.1:0", GRPCServices: []string{"ready"}}
	go func() { done <- Run(ctx, cfg, func(a map[string]net.Addr) { addrs <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addrs:
		return a
	case err := <-done:
		t.Fatal(err)
		return nil
	}
}

func TestHTTP(t *testing.T) {
	addrs := start(t)
	insecureClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, tc := range []struct {
		scheme, addr, path string
		code               int
	}{
		{"http", addrs["http"].String(), "/hello?x=1", 200},
		{"http", addrs["http"].String(), "/status/503", 503},
		{"https", addrs["https"].String(), "/healthz", 200},
	} {
		req, _ := http.NewRequest("GET", tc.scheme+"://"+tc.addr+tc.path, nil)
		req.Header.Set("X-Probe", "yes")
		resp, err := insecureClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rep Report
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.code || rep.TLS != (tc.scheme == "https") || rep.Local != tc.addr ||
			rep.Headers["X-Probe"][0] != "yes" || rep.Remote == "" || rep.Method != "GET" {
			t.Errorf("%s %s: status %d, report %+v", tc.scheme, tc.path, resp.StatusCode, rep)
		}
	}
}

func TestTCP(t *testing.T) {
	c, err := net.Dial("tcp", start(t)["tcp"].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping\n"))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("echoed %q, %v", line, err)
	}
}

func TestGRPCHealth(t *testing.T) {
	conn, err := grpc.NewClient("passthrough:///"+start(t)["grpc"].String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "ready"} {
		resp, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("service %q: %v, %v", service, resp, err)
		}
	}
	if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "other"}); status.Code(err) != codes.NotFound {
		t.Errorf("an unknown service: %v, want NotFound", err)
	}
}

// TestGet: the client mode fetches and prints the answer, and fails on a status other than 2xx
// or no server.
func TestGet(t *testing.T) {
	addrs := start(t)
	var out strings.Builder
	if err := Get(t.Context(), "https://"+addrs["https"].String()+"/from-get", &out); err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Path != "/from-get" || !rep.TLS {
		t.Errorf("printed %q (%v); want the report of GET /from-get over TLS", out.String(), err)
	}
	if err := Get(t.Context(), "http://"+addrs["http"].String()+"/status/503", io.Discard); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a 503: %v; want an error saying so", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if err := Get(t.Context(), "http://"+closed+"/", io.Discard); err == nil {
		t.Errorf("no server: no error")
	}
}
