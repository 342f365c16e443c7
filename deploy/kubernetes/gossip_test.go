package kubernetes_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// podIPSample is what the tests put in the pod address variable, as the
// kubelet would.
const podIPSample = "10.244.7.9"

// TestDeployGossipPeers checks the headless Service the replicas find each
// other by: every pod's address, ready or not, on the gossip port.
func TestDeployGossipPeers(t *testing.T) {
	m := loadManifests(t)
	p, d := m.peers, m.deployment

	if p.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s has clusterIP %q, want None: its name must resolve to every pod, not to one virtual address", p.Name, p.Spec.ClusterIP)
	}
	if !p.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s does not publish not-ready addresses: a new replica is ready only after it has joined, so it must be found before", p.Name)
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		i := slices.IndexFunc(p.Spec.Ports, func(sp corev1.ServicePort) bool {
			return sp.Port == gossipPort && sp.Protocol == proto
		})
		if i < 0 {
			t.Errorf("Service %s has no port %d/%s (has %+v)", p.Name, gossipPort, proto, p.Spec.Ports)
			continue
		}
		// The peers dial the pods' addresses directly: the pod port is the one.
		if tp := p.Spec.Ports[i].TargetPort; tp != (intstr.IntOrString{}) && tp.IntValue() != gossipPort {
			t.Errorf("Service %s port %d/%s targets %s, want %d", p.Name, gossipPort, proto, tp.String(), gossipPort)
		}
	}

	pod := d.Spec.Template
	if len(p.Spec.Selector) == 0 || !hasLabels(pod.Labels, p.Spec.Selector) {
		t.Errorf("Service %s selector %v does not select the Deployment's pods (labels %v)", p.Name, p.Spec.Selector, pod.Labels)
	}
	if d.Spec.Selector != nil && !hasLabels(p.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("Service %s selector %v is wider than the Deployment's %v: it would list pods that do not gossip", p.Name, p.Spec.Selector, d.Spec.Selector.MatchLabels)
	}

	c := coreDNSContainer(t, d)
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return cp.ContainerPort == gossipPort && cp.Protocol == proto
		}) {
			t.Errorf("the container has no port %d/%s", gossipPort, proto)
		}
	}
}

// TestDeployGossipCorefile checks the Corefile's cluster block against the
// objects it names: it listens on the gossip port, advertises the pod's
// address from the Deployment's downward-API variable, and joins the
// headless Service by its DNS name in the cluster domain.
func TestDeployGossipCorefile(t *testing.T) {
	m := loadManifests(t)
	c := coreDNSContainer(t, m.deployment)
	t.Setenv(podIPEnv(t, c), podIPSample)
	t.Setenv(dnsServiceHostEnv(m), dnsServiceIPSample)
	blocks := parseCorefile(t, m.configMap.Data["Corefile"])
	hf := pluginBlock(t, blocks)
	if hf.clusters != 1 {
		t.Fatalf("the %s block has %d cluster blocks, want 1", pluginName, hf.clusters)
	}
	port := strconv.Itoa(gossipPort)

	bind := "0.0.0.0:" + port // the plugin's default
	if args, ok := hf.clusterOption("bind"); ok {
		if len(args) != 1 {
			t.Fatalf("cluster bind %q: want one ADDRESS:PORT", args)
		}
		bind = args[0]
	}
	host, p, err := net.SplitHostPort(bind)
	if err != nil || p != port || (host != "0.0.0.0" && host != "::") {
		t.Errorf("cluster bind %q, want every address on the container's gossip port (0.0.0.0:%s)", bind, port)
	}

	// The sample address appears only if the Corefile names the variable the
	// Deployment sets.
	want := net.JoinHostPort(podIPSample, port)
	if args, _ := hf.clusterOption("advertise"); !slices.Equal(args, []string{want}) {
		t.Errorf("cluster advertise %q, want [{$%s}:%s] (%q with the pod's address in %s)", args, podIPEnv(t, c), port, want, podIPEnv(t, c))
	}

	peers := m.peers
	name := fmt.Sprintf("%s.%s.svc.%s", peers.Name, peers.Namespace, clusterDomain(t, blocks))
	args, _ := hf.clusterOption("join")
	if !slices.ContainsFunc(args, func(peer string) bool {
		h, p, err := net.SplitHostPort(peer)
		if err != nil { // HOST alone: the default port
			h, p = peer, "7946"
		}
		return strings.EqualFold(strings.TrimSuffix(h, "."), name) && p == port
	}) {
		t.Errorf("cluster join %q, want the headless Service %s:%s", args, name, port)
	}

	// Cluster DNS pods resolve through the node's resolver, which does not
	// know the headless Service: its name is looked up through the cluster
	// DNS Service, whose address Kubernetes gives every pod of its namespace.
	if args, _ := hf.clusterOption("resolver"); !slices.Equal(args, []string{dnsServiceIPSample + ":53"}) {
		t.Errorf("cluster resolver %q, want [{$%s}:53], the %s Service's address", args, dnsServiceHostEnv(m), m.service.Name)
	}
	if links := m.deployment.Spec.Template.Spec.EnableServiceLinks; links != nil && !*links {
		t.Errorf("enableServiceLinks is false: the pods would not have %s, which the Corefile's resolver reads", dnsServiceHostEnv(m))
	}
}

// dnsServiceIPSample stands for the cluster DNS Service's address.
const dnsServiceIPSample = "10.96.0.10"

// dnsServiceHostEnv is the variable Kubernetes sets in every pod of the
// Service's namespace to the Service's address (enableServiceLinks).
func dnsServiceHostEnv(m *manifests) string {
	return strings.ToUpper(strings.ReplaceAll(m.service.Name, "-", "_")) + "_SERVICE_HOST"
}

// TestDeployGossipKey checks that the key the Corefile reads is the Secret
// the Deployment mounts, that the Secret's template carries no usable key
// and is not applied with the directory, and that the README creates it.
func TestDeployGossipKey(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	c := coreDNSContainer(t, d)
	keyFile := gossipKeyFile(t, m.configMap.Data["Corefile"])
	if !path.IsAbs(keyFile) {
		t.Fatalf("cluster key_file %q, want an absolute path in the container", keyFile)
	}

	// The mount the file is under: the deepest one, as in the container.
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if strings.HasPrefix(keyFile, strings.TrimSuffix(vm.MountPath, "/")+"/") &&
			(mount == nil || len(vm.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("cluster key_file %s is under no volume mount (%+v)", keyFile, c.VolumeMounts)
	}
	if !mount.ReadOnly {
		t.Errorf("the key's volume %q is mounted read-write at %s", mount.Name, mount.MountPath)
	}
	i := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if i < 0 {
		t.Fatalf("volume %q is mounted but not defined", mount.Name)
	}
	secret := d.Spec.Template.Spec.Volumes[i].Secret
	if secret == nil {
		t.Fatalf("cluster key_file %s is in volume %q, which is no Secret: %+v", keyFile, mount.Name, d.Spec.Template.Spec.Volumes[i].VolumeSource)
	}
	if secret.Optional != nil && *secret.Optional {
		t.Errorf("the key's Secret %s is optional: a pod without it could never join", secret.SecretName)
	}
	file := strings.TrimPrefix(keyFile, strings.TrimSuffix(mount.MountPath, "/")+"/")
	key := file // without items, each key of the Secret is a file
	if len(secret.Items) > 0 {
		j := slices.IndexFunc(secret.Items, func(kp corev1.KeyToPath) bool { return path.Clean(kp.Path) == file })
		if j < 0 {
			t.Fatalf("the Secret volume %q puts no key at %s (items %+v), where key_file reads it", mount.Name, file, secret.Items)
		}
		key = secret.Items[j].Key
	}

	// The template, for those who keep Secrets as manifests.
	data, err := os.ReadFile(gossipSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	if ext := filepath.Ext(gossipSecretFile); slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
		t.Errorf("%s: `kubectl apply -f %s` would apply its placeholder key", gossipSecretFile, deployDir)
	}
	var tmpl corev1.Secret
	if err := yaml.UnmarshalStrict(data, &tmpl); err != nil {
		t.Fatalf("%s does not decode strictly into a Secret: %v", gossipSecretFile, err)
	}
	if tmpl.APIVersion != "v1" || tmpl.Kind != "Secret" {
		t.Errorf("%s is %s %s, want v1 Secret", gossipSecretFile, tmpl.APIVersion, tmpl.Kind)
	}
	if tmpl.Namespace != d.Namespace || tmpl.Name != secret.SecretName {
		t.Errorf("%s is the Secret %s/%s, want %s/%s (what the Deployment mounts)", gossipSecretFile, tmpl.Namespace, tmpl.Name, d.Namespace, secret.SecretName)
	}
	value, ok := tmpl.StringData[key]
	if !ok {
		value, ok = string(tmpl.Data[key]), tmpl.Data[key] != nil
	}
	if !ok {
		t.Errorf("%s has no key %q (the file key_file reads)", gossipSecretFile, key)
	} else if validGossipKey(value) {
		t.Errorf("%s holds a usable key %q: whoever reads the repository could join the gossip", gossipSecretFile, value)
	}

	// The README creates the Secret with a fresh key.
	readme, err := os.ReadFile(deployReadme)
	if err != nil {
		t.Fatal(err)
	}
	create := fmt.Sprintf(`kubectl -n %s create secret generic %s --from-literal=%s="$(head -c 32 /dev/urandom | base64)"`, d.Namespace, secret.SecretName, key)
	if !strings.Contains(oneLineCommands(string(readme)), create) {
		t.Errorf("%s does not create the key's Secret with\n%s", deployReadme, create)
	}
}

// TestDeployGossipNetworkPolicy checks the NetworkPolicy the README shows for
// clusters that isolate kube-system: it lets the gossiping pods reach each
// other on the gossip port, both protocols, in every direction it isolates.
func TestDeployGossipNetworkPolicy(t *testing.T) {
	m := loadManifests(t)
	readme, err := os.ReadFile(deployReadme)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(block[1], "kind: NetworkPolicy") {
			found = append(found, block[1])
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s shows %d NetworkPolicy blocks (```yaml), want 1", deployReadme, len(found))
	}
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(found[0]), &np); err != nil {
		t.Fatalf("the README's NetworkPolicy does not decode strictly: %v", err)
	}
	if np.APIVersion != networkingv1.SchemeGroupVersion.String() {
		t.Errorf("the README's NetworkPolicy has apiVersion %q, want %s", np.APIVersion, networkingv1.SchemeGroupVersion)
	}
	if np.Namespace != m.peers.Namespace {
		t.Errorf("the README's NetworkPolicy is in namespace %q, want %s", np.Namespace, m.peers.Namespace)
	}
	gossipers := m.peers.Spec.Selector
	if len(np.Spec.PodSelector.MatchExpressions) > 0 || !maps.Equal(np.Spec.PodSelector.MatchLabels, gossipers) {
		t.Errorf("the README's NetworkPolicy selects %+v, want the pods the headless Service selects, %v", np.Spec.PodSelector, gossipers)
	}
	if len(np.Spec.PolicyTypes) == 0 {
		t.Errorf("the README's NetworkPolicy names no policyTypes")
	}

	peerOK := func(peers []networkingv1.NetworkPolicyPeer) bool {
		return slices.ContainsFunc(peers, func(p networkingv1.NetworkPolicyPeer) bool {
			return p.NamespaceSelector == nil && p.IPBlock == nil && p.PodSelector != nil &&
				len(p.PodSelector.MatchExpressions) == 0 && maps.Equal(p.PodSelector.MatchLabels, gossipers)
		})
	}
	portsOK := func(ports []networkingv1.NetworkPolicyPort) bool {
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			if !slices.ContainsFunc(ports, func(p networkingv1.NetworkPolicyPort) bool {
				return p.Protocol != nil && *p.Protocol == proto && p.Port != nil && p.Port.IntValue() == gossipPort && p.EndPort == nil
			}) {
				return false
			}
		}
		return true
	}
	for _, pt := range np.Spec.PolicyTypes {
		var ok bool
		switch pt {
		case networkingv1.PolicyTypeIngress:
			ok = slices.ContainsFunc(np.Spec.Ingress, func(r networkingv1.NetworkPolicyIngressRule) bool {
				return peerOK(r.From) && portsOK(r.Ports)
			})
		case networkingv1.PolicyTypeEgress:
			ok = slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return peerOK(r.To) && portsOK(r.Ports)
			})
		}
		if !ok {
			t.Errorf("the README's NetworkPolicy isolates %s but has no rule for the peers on %d/TCP and %d/UDP", pt, gossipPort, gossipPort)
		}
	}
}

// pluginBlock reads the one healthfailover block of a Corefile.
func pluginBlock(t *testing.T, blocks []caddyfile.ServerBlock) hfBlock {
	t.Helper()
	var found []hfBlock
	for _, sb := range blocks {
		if _, ok := sb.Tokens[pluginName]; ok {
			found = append(found, readBlock(sb))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d server blocks use %s, want 1", len(found), pluginName)
	}
	return found[0]
}

// gossipKeyFile is the cluster block's key_file.
func gossipKeyFile(t *testing.T, corefile string) string {
	t.Helper()
	hf := pluginBlock(t, parseCorefile(t, corefile))
	args, ok := hf.clusterOption("key_file")
	if !ok || len(args) != 1 {
		t.Fatalf("cluster key_file %q: want one path (the gossip between replicas is encrypted)", args)
	}
	return args[0]
}

// clusterDomain is the first zone of the stock block's kubernetes plugin.
func clusterDomain(t *testing.T, blocks []caddyfile.ServerBlock) string {
	t.Helper()
	args := directiveArgs(serverBlock(t, blocks, ".:53"), "kubernetes")
	if len(args) != 1 || len(args[0]) == 0 {
		t.Fatalf("the .:53 block's kubernetes plugin has arguments %q, want the cluster domain first", args)
	}
	return strings.TrimSuffix(args[0][0], ".")
}

// podIPEnv is the container's variable that holds the pod's address.
func podIPEnv(t *testing.T, c *corev1.Container) string {
	t.Helper()
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP" {
			return e.Name
		}
	}
	t.Fatalf("the container has no variable from status.podIP (env %+v): the Corefile's advertise needs the pod's address", c.Env)
	return ""
}

// validGossipKey reports whether s is a key the cluster block accepts: 16,
// 24 or 32 bytes, base64-encoded.
func validGossipKey(s string) bool {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	return err == nil && slices.Contains([]int{16, 24, 32}, len(b))
}

// oneLineCommands joins the shell lines a backslash continues and collapses
// runs of blanks, so that a command reads the same however it is wrapped.
func oneLineCommands(s string) string {
	s = strings.ReplaceAll(s, "\\\n", " ")
	return regexp.MustCompile(`[ \t]+`).ReplaceAllString(s, " ")
}

// loadableCorefile returns the Corefile as a pod sees it, for loading it
// outside one: the pod's address in the Deployment's variable, and a valid
// gossip key at a temporary path in place of the Secret's mount.
func loadableCorefile(t *testing.T, m *manifests) string {
	t.Helper()
	corefile := m.configMap.Data["Corefile"]
	t.Setenv(podIPEnv(t, coreDNSContainer(t, m.deployment)), podIPSample)
	t.Setenv(dnsServiceHostEnv(m), dnsServiceIPSample)
	keyFile := gossipKeyFile(t, corefile)
	local := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(local, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(corefile, "\n")
	n := 0
	for i, line := range lines {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "key_file" && f[1] == keyFile {
			lines[i] = strings.Replace(line, keyFile, local, 1)
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d lines read key_file %s, want 1", n, keyFile)
	}
	return strings.Join(lines, "")
}
