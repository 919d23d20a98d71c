// Package deploy holds what runs Portcullis in production: the container
// image (Dockerfile), the Kubernetes manifests (kubernetes/) and the
// Grafana dashboard (grafana/). It has no code; its test decodes every
// manifest strictly into the Kubernetes API types and checks the
// properties the gateway's operation relies on (non-root, read-only root
// filesystem, probes, replicas, disruption budget, secrets only by
// reference, a configuration the gateway accepts).
package deploy
