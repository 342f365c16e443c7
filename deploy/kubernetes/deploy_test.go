// Package kubernetes_test checks the manifests beside it, the image they run
// and the README that applies them, from outside the plugin: the Corefile is
// loaded as CoreDNS loads it, with every in-tree plugin and healthfailover
// registered, and what it declares is read from its tokens.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/healthfailover/healthfailover" // registers the plugin
	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/miekg/dns"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// The manifests that replace the stock cluster DNS (this directory), and the
// image they run.
const (
	deployDir      = "."
	deployReadme   = "README.md"
	dockerfilePath = "../../Dockerfile"
	corefileMount  = "/etc/coredns"
	pluginName     = "healthfailover"

	// The gossip of the plugin's cluster block: the headless Service the
	// replicas find each other by, the port memberlist listens on (TCP and
	// UDP), and the Secret template that is no manifest `kubectl apply -f`
	// of this directory applies.
	peersService     = "healthfailover-peers"
	gossipPort       = 7946
	gossipSecretFile = "gossip-secret.yaml.template"
)

// stockCorefile is the cluster Corefile of kubeadm, kind and the
// coredns/deployment manifests: the ConfigMap must keep its server block
// word for word.
const stockCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

// manifests holds every object of this directory, each decoded strictly.
type manifests struct {
	serviceAccount     *corev1.ServiceAccount
	clusterRole        *rbacv1.ClusterRole
	clusterRoleBinding *rbacv1.ClusterRoleBinding
	configMap          *corev1.ConfigMap
	deployment         *appsv1.Deployment
	service            *corev1.Service // kube-dns
	peers              *corev1.Service // the headless one, for gossip
}

var yamlDocSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadManifests decodes every YAML document of this directory into its API
// type, refusing unknown and duplicate fields, unknown kinds and a second
// object of a kind.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	yml, _ := filepath.Glob(filepath.Join(deployDir, "*.yml"))
	jsn, _ := filepath.Glob(filepath.Join(deployDir, "*.json"))
	if len(yml)+len(jsn) > 0 {
		t.Fatalf("%v: name manifests *.yaml", append(yml, jsn...))
	}
	if len(files) == 0 {
		t.Fatalf("no manifest in %s", deployDir)
	}

	m := &manifests{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocSeparator.Split(string(data), -1) {
			if isEmptyYAML(doc) {
				continue
			}
			where := file + " document " + strconv.Itoa(i+1)
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Spec       struct {
					ClusterIP string `json:"clusterIP"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var (
				obj  any
				want schema.GroupVersionKind
				slot bool // the slot was empty
			)
			switch meta.Kind {
			case "ServiceAccount":
				m.serviceAccount, slot = new(corev1.ServiceAccount), m.serviceAccount == nil
				obj, want = m.serviceAccount, corev1.SchemeGroupVersion.WithKind(meta.Kind)
			case "ClusterRole":
				m.clusterRole, slot = new(rbacv1.ClusterRole), m.clusterRole == nil
				obj, want = m.clusterRole, rbacv1.SchemeGroupVersion.WithKind(meta.Kind)
			case "ClusterRoleBinding":
				m.clusterRoleBinding, slot = new(rbacv1.ClusterRoleBinding), m.clusterRoleBinding == nil
				obj, want = m.clusterRoleBinding, rbacv1.SchemeGroupVersion.WithKind(meta.Kind)
			case "ConfigMap":
				m.configMap, slot = new(corev1.ConfigMap), m.configMap == nil
				obj, want = m.configMap, corev1.SchemeGroupVersion.WithKind(meta.Kind)
			case "Deployment":
				m.deployment, slot = new(appsv1.Deployment), m.deployment == nil
				obj, want = m.deployment, appsv1.SchemeGroupVersion.WithKind(meta.Kind)
			case "Service":
				if meta.Spec.ClusterIP == corev1.ClusterIPNone {
					m.peers, slot = new(corev1.Service), m.peers == nil
					obj, want = m.peers, corev1.SchemeGroupVersion.WithKind(meta.Kind)
					break
				}
				m.service, slot = new(corev1.Service), m.service == nil
				obj, want = m.service, corev1.SchemeGroupVersion.WithKind(meta.Kind)
			case "Secret":
				t.Fatalf("%s: a Secret in a manifest: `kubectl apply -f %s` would apply it, placeholder key and all; name it *.template and document how to create it", where, deployDir)
			default:
				t.Fatalf("%s: unexpected kind %q", where, meta.Kind)
			}
			if !slot {
				t.Fatalf("%s: a second %s (clusterIP %q)", where, meta.Kind, meta.Spec.ClusterIP)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: does not decode strictly into %s: %v", where, want.Kind, err)
			}
			if got := meta.APIVersion; got != want.GroupVersion().String() {
				t.Errorf("%s: %s has apiVersion %q, want %q", where, meta.Kind, got, want.GroupVersion())
			}
		}
	}

	if m.serviceAccount == nil || m.clusterRole == nil || m.clusterRoleBinding == nil ||
		m.configMap == nil || m.deployment == nil || m.service == nil || m.peers == nil {
		t.Fatalf("want a ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, Deployment, Service and headless Service; got %+v", m)
	}
	return m
}

func isEmptyYAML(doc string) bool {
	for line := range strings.Lines(doc) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// TestDeployManifests checks that the manifests are the stock cluster DNS
// objects, under the stock names, wired to each other.
func TestDeployManifests(t *testing.T) {
	m := loadManifests(t)

	names := []struct{ kind, namespace, name, wantNamespace, wantName string }{
		{"ServiceAccount", m.serviceAccount.Namespace, m.serviceAccount.Name, "kube-system", "coredns"},
		{"ClusterRole", m.clusterRole.Namespace, m.clusterRole.Name, "", "system:coredns"},
		{"ClusterRoleBinding", m.clusterRoleBinding.Namespace, m.clusterRoleBinding.Name, "", "system:coredns"},
		{"ConfigMap", m.configMap.Namespace, m.configMap.Name, "kube-system", "coredns"},
		{"Deployment", m.deployment.Namespace, m.deployment.Name, "kube-system", "coredns"},
		{"Service", m.service.Namespace, m.service.Name, "kube-system", "kube-dns"},
		{"headless Service", m.peers.Namespace, m.peers.Name, "kube-system", peersService},
	}
	for _, n := range names {
		if n.namespace != n.wantNamespace || n.name != n.wantName {
			t.Errorf("%s is %s/%s, want %s/%s", n.kind, n.namespace, n.name, n.wantNamespace, n.wantName)
		}
	}

	// RBAC: what the kubernetes plugin lists and watches.
	want := map[string][]string{
		"/endpoints":                      {"list", "watch"},
		"/services":                       {"list", "watch"},
		"/pods":                           {"list", "watch"},
		"/namespaces":                     {"list", "watch"},
		"discovery.k8s.io/endpointslices": {"list", "watch"},
	}
	granted := map[string][]string{}
	for _, r := range m.clusterRole.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				granted[g+"/"+res] = append(granted[g+"/"+res], r.Verbs...)
			}
		}
	}
	for res, verbs := range want {
		for _, v := range verbs {
			if !slices.Contains(granted[res], v) {
				t.Errorf("ClusterRole does not grant %s on %q", v, res)
			}
		}
	}
	crb := m.clusterRoleBinding
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: m.clusterRole.Name}) {
		t.Errorf("ClusterRoleBinding roleRef = %+v, want the ClusterRole %s", crb.RoleRef, m.clusterRole.Name)
	}
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: m.serviceAccount.Name, Namespace: m.serviceAccount.Namespace}
	if !slices.Contains(crb.Subjects, sa) {
		t.Errorf("ClusterRoleBinding subjects = %+v, want %+v", crb.Subjects, sa)
	}

	// Deployment: the selector is immutable, so it must be the stock one for
	// `kubectl apply` to update the running Deployment.
	d := m.deployment
	pod := d.Spec.Template
	stockSelector := map[string]string{"k8s-app": "kube-dns"}
	if d.Spec.Selector == nil || !maps.Equal(d.Spec.Selector.MatchLabels, stockSelector) || len(d.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("Deployment selector = %+v, want exactly matchLabels %v (the stock selector, which cannot change)", d.Spec.Selector, stockSelector)
	}
	if !hasLabels(pod.Labels, stockSelector) {
		t.Errorf("pod labels %v do not match the selector %v", pod.Labels, stockSelector)
	}
	if !maps.Equal(m.service.Spec.Selector, stockSelector) {
		t.Errorf("Service selector = %v, want %v", m.service.Spec.Selector, stockSelector)
	}
	if d.Labels["k8s-app"] != "kube-dns" {
		t.Errorf("Deployment labels = %v, want k8s-app: kube-dns", d.Labels)
	}
	if pod.Spec.ServiceAccountName != m.serviceAccount.Name {
		t.Errorf("pod serviceAccountName = %q, want %q", pod.Spec.ServiceAccountName, m.serviceAccount.Name)
	}
	if pod.Spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName = %q, want system-cluster-critical", pod.Spec.PriorityClassName)
	}
	if !slices.ContainsFunc(pod.Spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "CriticalAddonsOnly" && tol.Operator == corev1.TolerationOpExists
	}) {
		t.Errorf("tolerations %+v lack CriticalAddonsOnly Exists", pod.Spec.Tolerations)
	}
	// Cluster DNS resolving through itself would loop.
	if pod.Spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("dnsPolicy = %q, want Default", pod.Spec.DNSPolicy)
	}

	// Service: the stock address stays; the ports reach the container's.
	if m.service.Spec.ClusterIP != "" {
		t.Errorf("Service clusterIP = %q: leave it out so that apply keeps the existing kube-dns address", m.service.Spec.ClusterIP)
	}
	c := coreDNSContainer(t, d)
	for _, svc := range []*corev1.Service{m.service, m.peers} {
		for _, sp := range svc.Spec.Ports {
			target := sp.TargetPort.IntValue()
			if target == 0 {
				target = int(sp.Port)
			}
			if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
				return int(cp.ContainerPort) == target && cp.Protocol == sp.Protocol
			}) {
				t.Errorf("Service %s port %s %d/%s targets no container port", svc.Name, sp.Name, target, sp.Protocol)
			}
		}
	}
	for _, want := range []string{"53/UDP", "53/TCP", "9153/TCP"} {
		if !slices.ContainsFunc(m.service.Spec.Ports, func(sp corev1.ServicePort) bool {
			return strconv.Itoa(int(sp.Port))+"/"+string(sp.Protocol) == want
		}) {
			t.Errorf("Service has no port %s", want)
		}
	}

	scrape := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9153"}
	if !hasLabels(m.service.Annotations, scrape) {
		t.Errorf("Service annotations %v lack %v", m.service.Annotations, scrape)
	}
	if !hasLabels(pod.Annotations, scrape) {
		t.Errorf("pod annotations %v lack %v", pod.Annotations, scrape)
	}
}

// TestDeployConfigMapMount checks that the Corefile reaches the path the
// container's arguments name.
func TestDeployConfigMapMount(t *testing.T) {
	m := loadManifests(t)
	if keys := slices.Sorted(maps.Keys(m.configMap.Data)); !slices.Equal(keys, []string{"Corefile"}) {
		t.Fatalf("ConfigMap keys = %v, want [Corefile]", keys)
	}
	d := m.deployment
	c := coreDNSContainer(t, d)
	i := slices.IndexFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == corefileMount })
	if i < 0 {
		t.Fatalf("no volume mounted at %s: %+v", corefileMount, c.VolumeMounts)
	}
	mount := c.VolumeMounts[i]
	if mount.SubPath != "" {
		t.Errorf("the mount at %s uses subPath %q: a subPath mount never sees ConfigMap updates, so reload would not either", corefileMount, mount.SubPath)
	}
	j := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if j < 0 {
		t.Fatalf("volume %q is mounted but not defined", mount.Name)
	}
	cm := d.Spec.Template.Spec.Volumes[j].ConfigMap
	if cm == nil || cm.Name != m.configMap.Name {
		t.Fatalf("volume %q is %+v, want the ConfigMap %s", mount.Name, d.Spec.Template.Spec.Volumes[j].VolumeSource, m.configMap.Name)
	}
	// Without items the ConfigMap's keys become file names; with items, the
	// Corefile key must land at Corefile.
	if len(cm.Items) > 0 && !slices.Contains(cm.Items, corev1.KeyToPath{Key: "Corefile", Path: "Corefile"}) {
		t.Errorf("ConfigMap volume items = %+v, want key Corefile at path Corefile", cm.Items)
	}
}

// TestDeployCorefile checks the ConfigMap's Corefile as CoreDNS loads it: it
// parses with this build's directives, keeps the stock cluster server block
// word for word, and serves health, ready and metrics where the probes and
// the scrape annotations look.
func TestDeployCorefile(t *testing.T) {
	inprocess.PlaceDirective()
	m := loadManifests(t)
	blocks := parseCorefile(t, m.configMap.Data["Corefile"])

	stock := parseCorefile(t, stockCorefile)
	cluster := serverBlock(t, blocks, ".:53")
	if got, want := tokenTexts(cluster), tokenTexts(stock[0]); !slices.Equal(got, want) {
		t.Errorf("the .:53 server block differs from the stock one:\n got %q\nwant %q", got, want)
	}

	for _, sb := range blocks {
		for dir := range sb.Tokens {
			if !slices.Contains(dnsserver.Directives, dir) {
				t.Errorf("server block %v: directive %q is not in CoreDNS's plugin order", sb.Keys, dir)
			}
		}
	}
	if _, err := caddy.DirectiveAction("dns", pluginName); err != nil {
		t.Errorf("directive %s has no registered setup: %v", pluginName, err)
	}

	// The HTTP endpoints the probes and Prometheus use.
	listens := func(dir, defaultAddr, want string) {
		t.Helper()
		found := false
		for _, sb := range blocks {
			for _, args := range directiveArgs(sb, dir) {
				found = true
				addr := defaultAddr
				if len(args) > 0 {
					addr = args[0]
				}
				if !strings.HasSuffix(addr, want) {
					t.Errorf("server block %v: %s listens on %q, want %q", sb.Keys, dir, addr, want)
				}
			}
		}
		if !found {
			t.Errorf("the Corefile does not enable %s", dir)
		}
	}
	listens("health", ":8080", ":8080")
	listens("ready", ":8181", ":8181")
	listens("prometheus", "localhost:9153", ":9153")

	// /ready waits only for the plugins of the server blocks that enable ready.
	for _, sb := range blocks {
		if _, ok := sb.Tokens[pluginName]; ok {
			if _, ok := sb.Tokens["ready"]; !ok {
				t.Errorf("server block %v has %s but not ready: /ready would not wait for the first probes", sb.Keys, pluginName)
			}
		}
	}
}

// TestDeployHealthfailoverBlock loads the Corefile's healthfailover server
// block with the real plugin, as CoreDNS does at start-up, and checks what
// the block declares: its zones, its checks and its record sets.
func TestDeployHealthfailoverBlock(t *testing.T) {
	inprocess.PlaceDirective()
	m := loadManifests(t)
	corefile := loadableCorefile(t, m)
	blocks := parseCorefile(t, corefile)

	var found []caddyfile.ServerBlock
	for _, sb := range blocks {
		if _, ok := sb.Tokens[pluginName]; ok {
			found = append(found, sb)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d server blocks use %s, want 1", len(found), pluginName)
	}
	sb := found[0]

	// Every directive's setup runs (parsing and wiring, as at start-up), but
	// nothing starts: no socket opens and no probe is sent to the
	// documentation addresses. Only the server block that uses the plugin is
	// loaded: the kubernetes plugin's setup needs the pod's service account,
	// so the stock block loads only in a cluster (TestDeployCorefile holds it
	// to the stock words instead).
	input := caddy.CaddyfileInput{Contents: []byte(onlyPluginBlock(t, corefile)), Filepath: "Corefile", ServerTypeName: "dns"}
	if err := caddy.ValidateAndExecuteDirectives(input, nil, true); err != nil {
		t.Fatalf("the healthfailover server block does not load: %v", err)
	}

	hf := readBlock(sb)
	if !slices.Equal(hf.zones, []string{"shop.example.com."}) {
		t.Errorf("zones = %v, want [shop.example.com.]", hf.zones)
	}
	for _, z := range hf.zones {
		if !slices.ContainsFunc(sb.Keys, func(key string) bool { return dns.IsSubDomain(serverZone(key), z) }) {
			t.Errorf("zone %s is outside the server block %v: its queries would never reach the plugin", z, sb.Keys)
		}
	}

	var checks []string
	for _, ck := range hf.checks {
		checks = append(checks, ck.name)
		u, err := url.Parse(ck.target)
		if err != nil || !isDocumentationAddr(u.Hostname()) {
			t.Errorf("check %s probes %s: the example must use documentation addresses", ck.name, ck.target)
		}
	}
	if want := []string{"shop-east", "shop-west"}; !slices.Equal(checks, want) {
		t.Errorf("checks = %v, want %v", checks, want)
	}

	want := map[string][]member{
		"www.shop.example.com.": {{1, "192.0.2.10", "shop-east"}, {2, "198.51.100.10", "shop-west"}},
		"api.shop.example.com.": {{1, "192.0.2.10", "shop-east"}, {1, "198.51.100.10", "shop-west"}},
	}
	got := map[string][]member{}
	for _, set := range hf.sets {
		if set.qtype != "A" {
			t.Errorf("record %s has type %s, want A", set.name, set.qtype)
		}
		for _, mb := range set.members {
			got[set.name] = append(got[set.name], mb)
			if !isDocumentationAddr(mb.value) {
				t.Errorf("record %s answers %s: the example must use documentation addresses", set.name, mb.value)
			}
		}
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("record sets = %+v, want %+v", got, want)
	}
}

// onlyPluginBlock returns the Corefile with every line outside the server
// block that uses the plugin left blank, so that errors name the Corefile's
// own lines.
func onlyPluginBlock(t *testing.T, corefile string) string {
	t.Helper()
	var (
		depth      int
		start      = -1 // the first line of the server block the walk is in
		prev       int  // the line of the previous token
		uses       bool
		first, end int
	)
	d := caddyfile.NewDispenser("Corefile", strings.NewReader(corefile))
	for d.Next() {
		line := d.Line()
		switch {
		case d.Val() == "{":
			depth++
		case d.Val() == "}":
			depth--
			if depth == 0 {
				if uses {
					if end > 0 {
						t.Fatalf("two server blocks use %s", pluginName)
					}
					first, end = start, line
				}
				start, uses = -1, false
			}
		case depth == 0 && start < 0:
			start = line
		case depth == 1 && line != prev && d.Val() == pluginName:
			uses = true
		}
		prev = line
	}
	if end == 0 {
		t.Fatalf("no server block uses %s", pluginName)
	}
	lines := strings.SplitAfter(corefile, "\n")
	for i := range lines {
		if n := i + 1; n < first || n > end {
			lines[i] = "\n"
		}
	}
	return strings.Join(lines, "")
}

// hfBlock is what a healthfailover block declares, as the operator wrote it:
// names are made fully qualified and lower case, as the plugin reads them,
// and nothing else is interpreted.
type hfBlock struct {
	zones  []string
	checks []hfCheck
	sets   []hfSet

	clusters int        // how many cluster blocks
	cluster  [][]string // the statements of the (last) cluster block
}

type hfCheck struct {
	name   string
	target string // the URL, or "calculated"
}

type hfSet struct {
	name, qtype string
	members     []member
}

// member is one primary, secondary or tier line of a record block.
type member struct {
	tier  int
	value string // an address or name; "alias NAME" for an alias
	check string
}

// readBlock reads the healthfailover block of a server block from its
// tokens: `healthfailover [ZONES...]`, then `check NAME TARGET …`,
// `record NAME TYPE { … }` and `cluster { … }` inside it, the members inside
// each record and the options inside the cluster block.
func readBlock(sb caddyfile.ServerBlock) hfBlock {
	var (
		hf        hfBlock
		set       *hfSet // the record block the walk is in, if any
		inCluster bool
	)
	for _, st := range statements(sb.Tokens[pluginName]) {
		w := st.words
		switch {
		case st.depth == 0 && w[0] == pluginName:
			hf.zones = plugin.OriginsFromArgsOrServerBlock(w[1:], sb.Keys)
		case st.depth == 1:
			set, inCluster = nil, false
			switch {
			case w[0] == "check" && len(w) >= 3:
				hf.checks = append(hf.checks, hfCheck{name: w[1], target: w[2]})
			case w[0] == "record" && len(w) == 3:
				hf.sets = append(hf.sets, hfSet{name: strings.ToLower(dns.Fqdn(w[1])), qtype: strings.ToUpper(w[2])})
				set = &hf.sets[len(hf.sets)-1]
			case w[0] == "cluster":
				hf.clusters++
				hf.cluster, inCluster = nil, true
			}
		case st.depth == 2 && set != nil:
			if mb, ok := readMember(w); ok {
				set.members = append(set.members, mb)
			}
		case st.depth == 2 && inCluster:
			hf.cluster = append(hf.cluster, w)
		}
	}
	return hf
}

// clusterOption returns the arguments of a cluster block option, and whether
// it is there. An option given twice is the plugin's to refuse.
func (hf hfBlock) clusterOption(name string) ([]string, bool) {
	for _, w := range hf.cluster {
		if w[0] == name {
			return w[1:], true
		}
	}
	return nil, false
}

// readMember reads `primary VALUE [check NAME] [weight N]`, the same with
// secondary, and `tier N VALUE …`.
func readMember(w []string) (member, bool) {
	var mb member
	switch w[0] {
	case "primary":
		mb.tier, w = 1, w[1:]
	case "secondary":
		mb.tier, w = 2, w[1:]
	case "tier":
		if len(w) < 2 {
			return mb, false
		}
		n, err := strconv.Atoi(w[1])
		if err != nil {
			return mb, false
		}
		mb.tier, w = n, w[2:]
	default:
		return mb, false
	}
	if len(w) == 0 {
		return mb, false
	}
	if w[0] == "alias" && len(w) >= 2 {
		mb.value, w = "alias "+w[1], w[2:]
	} else {
		mb.value, w = w[0], w[1:]
	}
	for ; len(w) >= 2; w = w[2:] {
		if w[0] == "check" {
			mb.check = w[1]
		}
	}
	return mb, true
}

// statement is one line of a directive: its words, without the braces, and
// how many blocks deep it is.
type statement struct {
	depth int
	words []string
}

// statements walks a directive's tokens a line at a time, as the plugin's
// parser does, following its blocks.
func statements(tokens []caddyfile.Token) []statement {
	var (
		out   []statement
		depth int
	)
	d := caddyfile.NewDispenserTokens("Corefile", tokens)
	for d.Next() {
		if d.Val() == "}" {
			depth--
			continue
		}
		st := statement{depth: depth, words: []string{d.Val()}}
		for d.NextArg() {
			if d.Val() == "{" {
				depth++
				break
			}
			st.words = append(st.words, d.Val())
		}
		out = append(out, st)
	}
	return out
}

// TestDeployImage checks that the Deployment runs the image the Dockerfile
// builds: the stock entry point and arguments, the exposed ports, a non-root
// user Kubernetes can verify, and the tag the README builds.
func TestDeployImage(t *testing.T) {
	m := loadManifests(t)
	stages := parseDockerfile(t, dockerfilePath)
	final := stages[len(stages)-1]

	entry := final.last("ENTRYPOINT")
	var entrypoint []string
	if err := json.Unmarshal([]byte(entry), &entrypoint); err != nil {
		t.Fatalf("ENTRYPOINT %s is not in JSON (exec) form: %v", entry, err)
	}
	if !slices.Equal(entrypoint, []string{"/coredns"}) {
		t.Errorf("ENTRYPOINT = %q, want [\"/coredns\"] as in the stock image", entrypoint)
	}
	if cmd := final.last("CMD"); cmd != "" {
		t.Errorf("the final stage has CMD %s: the Deployment's args would silently replace it", cmd)
	}
	if !slices.ContainsFunc(final.all("COPY"), func(args string) bool {
		f := strings.Fields(args)
		return strings.HasPrefix(args, "--from=") && f[len(f)-1] == entrypoint[0]
	}) {
		t.Errorf("the final stage copies nothing from the builder to %s", entrypoint[0])
	}
	build := strings.Join(stages[0].all("RUN"), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/coredns", "setcap cap_net_bind_service=+ep"} {
		if !strings.Contains(build, want) {
			t.Errorf("the builder stage does not run %q", want)
		}
	}

	exposed := map[string]bool{}
	for _, args := range final.all("EXPOSE") {
		for _, p := range strings.Fields(args) {
			port, proto, _ := strings.Cut(p, "/")
			if proto == "" {
				proto = "tcp"
			}
			exposed[port+"/"+strings.ToUpper(proto)] = true
		}
	}
	for _, want := range []string{"53/UDP", "53/TCP"} {
		if !exposed[want] {
			t.Errorf("the image does not EXPOSE %s (exposes %v)", want, slices.Sorted(maps.Keys(exposed)))
		}
	}

	c := coreDNSContainer(t, m.deployment)
	if len(c.Command) > 0 && !slices.Equal(c.Command, entrypoint) {
		t.Errorf("container command %q overrides the ENTRYPOINT %q", c.Command, entrypoint)
	}
	if !slices.Equal(c.Args, []string{"-conf", corefileMount + "/Corefile"}) {
		t.Errorf("container args = %q, want [-conf %s/Corefile] as in the stock Deployment", c.Args, corefileMount)
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[strconv.Itoa(int(p.ContainerPort))+"/"+string(p.Protocol)] = true
	}
	for _, want := range []string{"53/UDP", "53/TCP", "9153/TCP"} {
		if !ports[want] {
			t.Errorf("the container has no port %s (has %v)", want, slices.Sorted(maps.Keys(ports)))
		}
	}
	for p := range exposed {
		if !ports[p] {
			t.Errorf("the image exposes %s but the container does not declare it", p)
		}
	}

	probe := func(name string, p *corev1.Probe, path string, port int) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want httpGet %s on %d, got %+v", name, path, port, p)
			return
		}
		if p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != port {
			t.Errorf("%s probe: httpGet %s on %s, want %s on %d", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, port)
		}
	}
	probe("liveness", c.LivenessProbe, "/health", 8080)
	probe("readiness", c.ReadinessProbe, "/ready", 8181)

	// Non-root on port 53: the binary's file capability needs NET_BIND_SERVICE
	// in the container, and runAsNonRoot needs a numeric USER in the image.
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, corev1.Capability("NET_BIND_SERVICE")) {
		t.Errorf("the container does not add NET_BIND_SERVICE: a non-root CoreDNS could not bind port 53")
	}
	user, _, _ := strings.Cut(final.last("USER"), ":")
	if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
		t.Errorf("the image's USER is %q, want a numeric non-root user", final.last("USER"))
	}

	readme, err := os.ReadFile(deployReadme)
	if err != nil {
		t.Fatal(err)
	}
	if want := "docker build -t " + c.Image + " ."; !bytes.Contains(readme, []byte(want)) {
		t.Errorf("%s does not build the image the Deployment runs (%q)", deployReadme, want)
	}
}

// dockerStage is one FROM … stage of a Dockerfile: its instructions in order,
// as [keyword, arguments].
type dockerStage [][2]string

func (s dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s {
		if in[0] == keyword {
			out = append(out, in[1])
		}
	}
	return out
}

func (s dockerStage) last(keyword string) string {
	all := s.all(keyword)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// parseDockerfile splits a Dockerfile into stages, joining continued lines and
// dropping comments.
func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var (
		stages  []dockerStage
		pending string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && pending == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		keyword, args, _ := strings.Cut(line, " ")
		keyword = strings.ToUpper(keyword)
		args = strings.TrimSpace(args)
		if keyword == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if keyword != "ARG" {
				t.Fatalf("%s: %s before the first FROM", path, keyword)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], [2]string{keyword, args})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("%s: %d stages, want a builder and a final stage", path, len(stages))
	}
	return stages
}

func coreDNSContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	return &cs[0]
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func parseCorefile(t *testing.T, corefile string) []caddyfile.ServerBlock {
	t.Helper()
	if corefile == "" {
		t.Fatal("empty Corefile")
	}
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(corefile), dnsserver.Directives)
	if err != nil {
		t.Fatalf("the Corefile does not load: %v", err)
	}
	return blocks
}

func serverBlock(t *testing.T, blocks []caddyfile.ServerBlock, key string) caddyfile.ServerBlock {
	t.Helper()
	for _, sb := range blocks {
		if slices.Contains(sb.Keys, key) {
			return sb
		}
	}
	t.Fatalf("no server block %q", key)
	return caddyfile.ServerBlock{}
}

// tokenTexts lists a server block's tokens in CoreDNS's plugin order, which
// is the order they take effect in.
func tokenTexts(sb caddyfile.ServerBlock) []string {
	var out []string
	for _, dir := range dnsserver.Directives {
		for _, tok := range sb.Tokens[dir] {
			out = append(out, tok.Text)
		}
	}
	return out
}

// directiveArgs returns the arguments of every use of dir in a server block:
// the tokens on the directive's own line, before any block.
func directiveArgs(sb caddyfile.ServerBlock, dir string) [][]string {
	var (
		out   [][]string
		depth int
		line  = -1
	)
	for _, tok := range sb.Tokens[dir] {
		switch {
		case tok.Text == "{":
			depth++
			line = -1
		case tok.Text == "}":
			depth--
		case depth == 0 && tok.Text == dir && tok.Line != line:
			out = append(out, nil)
			line = tok.Line
		case depth == 0 && tok.Line == line:
			out[len(out)-1] = append(out[len(out)-1], tok.Text)
		}
	}
	return out
}

// serverZone is the zone of a server block key such as "shop.example.com:53".
func serverZone(key string) string {
	key = strings.TrimPrefix(key, "dns://")
	if i := strings.LastIndex(key, ":"); i >= 0 {
		key = key[:i]
	}
	return dns.Fqdn(strings.ToLower(key))
}

// isDocumentationAddr reports whether s is an address of RFC 5737 or RFC 3849,
// which no test and no example may really contact.
func isDocumentationAddr(s string) bool {
	addr, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return false
	}
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"} {
		if netip.MustParsePrefix(p).Contains(addr) {
			return true
		}
	}
	return false
}
