package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sharedFiles are the files of n gateway replicas on the run's PostgreSQL
// schema and Redis prefix. Each keeps its own data directory and decision
// log; with several, they share the code key (codes.key_file), the outbox
// the sign-in reads its codes from, and the local CA (copied into each data
// directory), and name the front's port as listen.public_port. One replica
// runs exactly as on SQLite but for the store.
func sharedFiles(dir string, st *sharedStore, n int, frontPort string) []replicaFiles {
	storeYAML := fmt.Sprintf("  driver: postgres\n  postgres:\n    dsn_file: %s\n  redis:\n    url_file: %s\n    prefix: %q\n",
		st.DSNFile, st.URLFile, st.prefix)
	files := make([]replicaFiles, n)
	for i := range files {
		f := sqliteFiles(dir)
		f.store = storeYAML
		if i > 0 {
			f.dataDir = fmt.Sprintf("%s/data-%d", dir, i+1)
			f.decisionLog = fmt.Sprintf("%s/decisions-%d.jsonl", dir, i+1)
		}
		if n > 1 {
			f.outbox = dir + "/data/outbox.jsonl"
			f.codeKey = codeKeyPath(dir)
			f.publicPort = frontPort
		}
		files[i] = f
	}
	return files
}

func codeKeyPath(dir string) string { return filepath.Join(dir, "secrets", "code.key") }

// replicaName names replica i's configuration and log: portcullis,
// portcullis-2, ...
func replicaName(i int) string {
	if i == 0 {
		return "portcullis"
	}
	return "portcullis-" + strconv.Itoa(i+1)
}

// startGateways configures, provisions and starts the gateway processes
// one after another (the first applies the schema's migrations and makes
// the signing key, the others find them), each ready before the next, then
// the front when there are several. It returns the processes and the
// address wrk and the sign-ins reach them on.
func (b *harness) startGateways(ctx context.Context, o options, root string, bin func(string) string, upAddr string) ([]*proc, string, error) {
	files := []replicaFiles{sqliteFiles(b.dir)}
	var frontAddr string
	if o.store == storePostgresRedis {
		st, err := newSharedStore(ctx, b.dir, o.postgres, o.redis)
		if err != nil {
			return nil, "", err
		}
		b.shared = st
		if o.replicas > 1 {
			if frontAddr, err = freePort(); err != nil {
				return nil, "", err
			}
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, "", err
			}
			if err := writeSecret(codeKeyPath(b.dir), key); err != nil {
				return nil, "", err
			}
		}
		files = sharedFiles(b.dir, st, o.replicas, portOf(frontAddr))
	}
	var gws []*proc
	var listens []string
	for i, f := range files {
		gwAddr, err1 := freePort()
		adminAddr, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return gws, "", err
		}
		configPath := filepath.Join(b.dir, replicaName(i)+".yaml")
		if err := os.WriteFile(configPath, []byte(gatewayConfig(root, f, gwAddr, adminAddr, upAddr, o.nice, o.hashers, o.profile != "")), 0o600); err != nil {
			return gws, "", err
		}
		if i == 0 {
			if err := addUser(ctx, bin("portcullis"), configPath); err != nil {
				return gws, "", err
			}
			b.admin = adminAddr
		} else if err := copyCA(files[0].dataDir, f.dataDir); err != nil {
			return gws, "", err
		}
		gw, _, err := start(ctx, b.dir, replicaName(i), false, bin("portcullis"), "serve", "--config", configPath)
		if err != nil {
			return gws, "", err
		}
		b.procs, gws, listens = append(b.procs, gw), append(gws, gw), append(listens, gwAddr)
		if err := waitHTTP(ctx, http.DefaultClient, "http://"+adminAddr+"/readyz", gw); err != nil {
			return gws, "", err
		}
	}
	if len(gws) == 1 {
		return gws, listens[0], nil
	}
	front, addr, err := start(ctx, b.dir, "front", true, bin("front"), "-listen", frontAddr, "-backends", strings.Join(listens, ","))
	if err != nil {
		return gws, "", err
	}
	b.procs, b.front = append(b.procs, front), front
	return gws, addr, nil
}

// copyCA gives a replica's data directory the first replica's local CA, as
// an operator gives every replica the same one, so that one root is trusted
// whichever replica answers. The key stays 0600 in a 0700 directory.
func copyCA(fromDataDir, toDataDir string) error {
	to := filepath.Join(toDataDir, "ca")
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for name, mode := range map[string]os.FileMode{"root.key": 0o600, "root.crt": 0o644} {
		data, err := os.ReadFile(filepath.Join(fromDataDir, "ca", name))
		if err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
		if mode == 0o600 {
			err = writeSecret(filepath.Join(to, name), data)
		} else {
			err = os.WriteFile(filepath.Join(to, name), data, mode)
		}
		if err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
	}
	return nil
}
