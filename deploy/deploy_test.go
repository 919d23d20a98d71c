package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/portcullis/portcullis/config"
)

// manifests are the decoded objects of deploy/kubernetes, one of each kind.
type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	netpol     *networkingv1.NetworkPolicy
}

// decodeStrict decodes one YAML document into the API type its kind names,
// refusing any field the type does not have.
func decodeStrict(doc []byte, m *manifests) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		m.deployment = &appsv1.Deployment{}
		obj = m.deployment
	case "v1 Service":
		m.service = &corev1.Service{}
		obj = m.service
	case "v1 ConfigMap":
		m.configMap = &corev1.ConfigMap{}
		obj = m.configMap
	case "policy/v1 PodDisruptionBudget":
		m.pdb = &policyv1.PodDisruptionBudget{}
		obj = m.pdb
	case "networking.k8s.io/v1 NetworkPolicy":
		m.netpol = &networkingv1.NetworkPolicy{}
		obj = m.netpol
	case "v1 Secret":
		return errors.New("a Secret with its values in the repository; secrets are created apart and referenced")
	default:
		return fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
	}
	return yaml.UnmarshalStrict(doc, obj)
}

// splitDocuments splits a YAML stream at its "---" lines.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			docs = append(docs, slices.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(sc.Bytes())
		cur.WriteByte('\n')
	}
	docs = append(docs, cur.Bytes())
	return slices.DeleteFunc(docs, func(d []byte) bool { return len(bytes.TrimSpace(stripComments(d))) == 0 })
}

func stripComments(b []byte) []byte {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAll(b, nil)
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(b) {
			if err := decodeStrict(doc, m); err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	if m.deployment == nil || m.service == nil || m.configMap == nil || m.pdb == nil || m.netpol == nil {
		t.Fatalf("missing a Deployment, Service, ConfigMap, PodDisruptionBudget or NetworkPolicy: %+v", m)
	}
	return m
}

// The decoder is strict: a misspelt field fails, so the checks below read
// what Kubernetes would apply.
func TestDecoderRefusesUnknownFields(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 3}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 443, targetPorts: https}]}\n",
		"apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {minAvailible: 1}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {dsn: postgres://u:p@db/x}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
	} {
		if err := decodeStrict([]byte(doc), &manifests{}); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
	if err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 3}\n"), &manifests{}); err != nil {
		t.Errorf("a correct document refused: %v", err)
	}
}

func TestDeploymentIsHardened(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	if d.Spec.Replicas == nil {
		t.Fatal("replicas unset (1), want at least 2")
	}
	if n := *d.Spec.Replicas; n < 2 {
		t.Errorf("replicas %d, want at least 2", n)
	}
	if sel, labels := d.Spec.Selector.MatchLabels, d.Spec.Template.Labels; len(sel) == 0 || !subset(sel, labels) {
		t.Errorf("selector %v does not select the pod labels %v", sel, labels)
	}
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccompProfile is not RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not use")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the pod shares a host namespace")
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		t.Run(c.Name, func(t *testing.T) {
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("no securityContext")
			}
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Error("not runAsNonRoot with a non-zero runAsUser")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("root filesystem is writable")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("privilege escalation is allowed")
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("privileged")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 {
				t.Errorf("capabilities %+v: want drop ALL and nothing added", sc.Capabilities)
			}
			if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("seccompProfile is not RuntimeDefault")
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := c.Resources.Requests[res]; !ok || q.IsZero() {
					t.Errorf("no %s request", res)
				}
				if q, ok := c.Resources.Limits[res]; !ok || q.IsZero() {
					t.Errorf("no %s limit", res)
				}
			}
			for _, e := range c.Env {
				if e.Value != "" && secretName.MatchString(e.Name) {
					t.Errorf("env %s carries a secret inline", e.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("env %s takes a secret from the environment; secrets are files", e.Name)
				}
			}
		})
	}
}

// secretName matches names of settings that hold secrets.
var secretName = regexp.MustCompile(`(?i)key|secret|password|passwd|token|dsn|credential`)

// gatewayContainer is the Deployment's portcullis container.
func gatewayContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "portcullis" {
			return c
		}
	}
	t.Fatal("no portcullis container")
	return corev1.Container{}
}

// containerPort resolves a probe's or Service's port to a number.
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("port %q is not a container port", p.StrVal)
	return 0
}

func TestProbesOnTheAdminListener(t *testing.T) {
	m := loadManifests(t)
	c := gatewayContainer(t, m.deployment)
	cfg := gatewayConfig(t, m)
	adminPort := portOf(t, cfg.Listen.Admin)
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path || containerPort(t, c, g.Port) != adminPort || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) {
			t.Errorf("%s probe %s %s on port %v, want http %s on the admin port %d", p.name, g.Scheme, g.Path, g.Port.String(), p.path, adminPort)
		}
	}
	if !cfg.Listen.AdminExposed {
		t.Error("the probes cannot reach an admin listener on loopback: listen.admin_exposed is off")
	}
	httpsPort := portOf(t, cfg.Listen.HTTPS)
	if got := containerPort(t, c, intstr.FromString("https")); got != httpsPort {
		t.Errorf("container port https %d, listen.https %d", got, httpsPort)
	}
	for _, sp := range m.service.Spec.Ports {
		if got := containerPort(t, c, sp.TargetPort); got == adminPort {
			t.Errorf("the Service exposes the admin port (%s)", sp.Name)
		} else if got != httpsPort {
			t.Errorf("service port %s reaches %d, not listen.https", sp.Name, got)
		}
	}
	if !subset(m.service.Spec.Selector, m.deployment.Spec.Template.Labels) || len(m.service.Spec.Selector) == 0 {
		t.Errorf("the Service selects %v, not the pods", m.service.Spec.Selector)
	}
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	var n int32
	if _, err := fmt.Sscanf(addr[i+1:], "%d", &n); i < 0 || err != nil {
		t.Fatalf("%q has no port", addr)
	}
	return n
}

func TestDisruptionBudget(t *testing.T) {
	m := loadManifests(t)
	pdb := m.pdb.Spec
	if pdb.MinAvailable == nil && pdb.MaxUnavailable == nil {
		t.Fatal("neither minAvailable nor maxUnavailable is set")
	}
	if pdb.MinAvailable != nil && pdb.MaxUnavailable != nil {
		t.Fatal("both minAvailable and maxUnavailable are set")
	}
	replicas := *m.deployment.Spec.Replicas
	if v := pdb.MinAvailable; v != nil && v.Type == intstr.Int && (v.IntVal < 1 || v.IntVal >= replicas) {
		t.Errorf("minAvailable %d with %d replicas: no drain could proceed, or none is protected", v.IntVal, replicas)
	}
	if v := pdb.MaxUnavailable; v != nil && v.Type == intstr.Int && (v.IntVal < 1 || v.IntVal >= replicas) {
		t.Errorf("maxUnavailable %d with %d replicas", v.IntVal, replicas)
	}
	if pdb.Selector == nil || len(pdb.Selector.MatchLabels) == 0 || !subset(pdb.Selector.MatchLabels, m.deployment.Spec.Template.Labels) {
		t.Errorf("the budget selects %v, not the pods", pdb.Selector)
	}
	if sel := m.netpol.Spec.PodSelector.MatchLabels; len(sel) == 0 || !subset(sel, m.deployment.Spec.Template.Labels) {
		t.Errorf("the network policy selects %v, not the pods", sel)
	}
}

// gatewayConfig parses the ConfigMap's portcullis.yaml as `portcullis
// check` does, and fails on any problem. The files a running pod has (the
// secret files, the GeoIP database) are stood in for by files of the same
// names in a temporary directory.
func gatewayConfig(t *testing.T, m *manifests) *config.File {
	t.Helper()
	c := gatewayContainer(t, m.deployment)
	cfgPath := flagValue(t, c.Args, "--config")
	mount, key := mountFor(t, c, cfgPath)
	vol := volume(t, m.deployment, mount.Name)
	if vol.ConfigMap == nil || vol.ConfigMap.Name != m.configMap.Name {
		t.Fatalf("%s is not from the ConfigMap %s", cfgPath, m.configMap.Name)
	}
	text, ok := m.configMap.Data[key]
	if !ok {
		t.Fatalf("the ConfigMap has no %s", key)
	}
	dir := t.TempDir()
	stand := map[string][]byte{
		"secrets/postgres.dsn":  []byte("postgres://portcullis@postgres.db.svc:5432/portcullis?sslmode=verify-full\n"),
		"secrets/redis.url":     []byte("rediss://redis.db.svc:6380/0\n"),
		"secrets/code.key":      bytes.Repeat([]byte{7}, 32),
		"secrets/twilio.secret": []byte(strings.Repeat("s", 32)),
	}
	geoip, err := os.ReadFile("../testdata/geoip/GeoIP2-Anonymous-IP-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	stand["geoip/GeoIP2-Anonymous-IP.mmdb"] = geoip
	for name, b := range stand {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	local := strings.NewReplacer(secretsDir, dir+"/secrets/", geoipDir, dir+"/geoip/").Replace(text)
	f, err := config.Parse([]byte(local))
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			t.Errorf("portcullis.yaml:%d:%d: %s: %s", p.Line, p.Column, p.Path, p.Message)
		}
		t.FailNow()
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// secretsDir is where the pod's secret files are, geoipDir its GeoIP
// databases.
const (
	secretsDir = "/run/portcullis/secrets/"
	geoipDir   = "/var/lib/geoip/"
)

func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	t.Fatalf("args %q have no %s", args, name)
	return ""
}

// mountFor returns the volume mount that holds file and the file's path
// within it.
func mountFor(t *testing.T, c corev1.Container, file string) (corev1.VolumeMount, string) {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/"); ok {
			return vm, rel
		}
	}
	t.Fatalf("%s is on no volume of %s", file, c.Name)
	return corev1.VolumeMount{}, ""
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

func TestConfigurationFitsTheDeployment(t *testing.T) {
	m := loadManifests(t)
	cfg := gatewayConfig(t, m)
	c := gatewayContainer(t, m.deployment)
	text := m.configMap.Data["portcullis.yaml"]
	if cfg.Store.Driver != "postgres" {
		t.Errorf("store.driver %q: replicas share state in PostgreSQL and Redis", cfg.Store.Driver)
	}
	for _, want := range []string{"dsn_file: " + secretsDir + "postgres.dsn", "url_file: " + secretsDir + "redis.url"} {
		if !strings.Contains(text, want) {
			t.Errorf("portcullis.yaml does not set %s", want)
		}
	}
	// The root filesystem is read-only: data_dir must be a writable volume.
	if mount, _ := mountFor(t, c, path.Join(cfg.DataDir, "x")); mount.ReadOnly || volume(t, m.deployment, mount.Name).EmptyDir == nil {
		t.Errorf("data_dir %s is not on a writable emptyDir", cfg.DataDir)
	}
	// Inline secrets: no URL with credentials or connection string in the
	// configuration; every secret file comes from a Secret.
	for _, bad := range []string{"postgres://", "postgresql://", "redis://", "rediss://", "password=", "BEGIN "} {
		if strings.Contains(text, bad) {
			t.Errorf("portcullis.yaml holds %q: secrets belong in files", bad)
		}
	}
	files := secretFileSettings.FindAllStringSubmatch(text, -1)
	if len(files) < 5 {
		t.Fatalf("only %d secret files in portcullis.yaml: %v", len(files), files)
	}
	fromSecrets := secretItems(t, m.deployment)
	init := m.deployment.Spec.Template.Spec.InitContainers
	for _, f := range files {
		p := f[2]
		rel, ok := strings.CutPrefix(p, secretsDir)
		if !ok {
			t.Errorf("%s %s is outside %s", f[1], p, secretsDir)
			continue
		}
		if !fromSecrets[rel] {
			t.Errorf("%s %s comes from no Secret", f[1], p)
		}
		if len(init) == 0 || !strings.Contains(strings.Join(init[0].Args, " "), " "+rel) {
			t.Errorf("%s is not copied into %s mode 0600", rel, secretsDir)
		}
	}
	mount, _ := mountFor(t, c, secretsDir+"x")
	if v := volume(t, m.deployment, mount.Name); !mount.ReadOnly || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("%s is not a read-only mount of a memory-backed volume", secretsDir)
	}
}

// secretFileSettings finds the settings naming a secret file.
var secretFileSettings = regexp.MustCompile(`(?m)^\s*((?:dsn|url|key|secret|password|token)_file|cert|key):\s*(\S+)`)

// secretItems are the file names the Deployment's Secret references give.
func secretItems(t *testing.T, d *appsv1.Deployment) map[string]bool {
	t.Helper()
	items := map[string]bool{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		var sources []corev1.VolumeProjection
		if v.Projected != nil {
			sources = v.Projected.Sources
			if v.Projected.DefaultMode == nil || *v.Projected.DefaultMode&0o007 != 0 {
				t.Errorf("volume %s: secret files readable by others", v.Name)
			}
		}
		if v.Secret != nil {
			sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items}})
		}
		for _, s := range sources {
			if s.Secret == nil {
				continue
			}
			for _, it := range s.Secret.Items {
				items[it.Path] = true
			}
		}
	}
	return items
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var build string
	for line := range strings.SplitSeq(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			froms = append(froms, fields[1])
			users = append(users, "") // USER applies to its stage
		case "USER":
			users[len(users)-1] = fields[1]
		case "RUN":
			if strings.Contains(line, "go build") {
				build = line
			}
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Fatalf("stages %v: want a golang:1.26 build stage and a final stage", froms)
	}
	final := froms[len(froms)-1]
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage %s: want distroless static or scratch", final)
	}
	user := users[len(users)-1]
	uid, _, _ := strings.Cut(user, ":")
	if user == "" || uid == "0" || uid == "root" {
		t.Errorf("final stage runs as %q, want a non-root USER", user)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/portcullis"} {
		if !strings.Contains(build, want) {
			t.Errorf("build %q lacks %s", build, want)
		}
	}
	// The image's user is the one the pod runs as.
	m := loadManifests(t)
	if psc := m.deployment.Spec.Template.Spec.SecurityContext; psc == nil || psc.RunAsUser == nil || fmt.Sprint(*psc.RunAsUser) != uid {
		t.Errorf("the pod's runAsUser is not the image's USER %s", uid)
	}
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}
