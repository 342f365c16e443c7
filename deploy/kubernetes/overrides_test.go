package kubernetes_test

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
	"github.com/healthfailover/healthfailover/internal/inprocess"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The operator's overrides (the plugin's `override FILE`): a ConfigMap the
// operator creates and edits with kubectl, never one of this directory's
// manifests, which `kubectl apply -f` would reset on every apply.
const (
	overridesConfigMap = "healthfailover-overrides"
	overridesKey       = "overrides"
	overridesSection   = "## Maintenance: overrides"
	overridesDoc       = "../../docs/overrides.md"
)

// TestDeployOverrides checks that the file the Corefile's override reads is
// the key of the optional ConfigMap the Deployment mounts, read-only and as
// a directory (a subPath mount never sees the ConfigMap's updates), and that
// the README creates and edits that ConfigMap under that key and links the
// override file's page.
func TestDeployOverrides(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	c := coreDNSContainer(t, d)
	file := overridePath(t, parseCorefile(t, m.configMap.Data["Corefile"]))
	if !path.IsAbs(file) {
		t.Fatalf("override %q, want an absolute path in the container", file)
	}

	// The mount the file is under, or that is the file itself (a subPath
	// mount): the deepest one, as in the container.
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if (file == path.Clean(vm.MountPath) || strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")) &&
			(mount == nil || len(vm.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("override %s is under no volume mount (%+v)", file, c.VolumeMounts)
	}
	// Every mount of the volume, in every container: the kubelet updates a
	// ConfigMap's files only under a mount of the whole volume.
	for _, ctr := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
		for _, vm := range ctr.VolumeMounts {
			if vm.Name == mount.Name && (vm.SubPath != "" || vm.SubPathExpr != "") {
				t.Errorf("container %s mounts the volume %q at %s with subPath %q: a subPath mount never sees ConfigMap updates, so an edit of the overrides would not apply", ctr.Name, vm.Name, vm.MountPath, vm.SubPath+vm.SubPathExpr)
			}
		}
	}
	if file == path.Clean(mount.MountPath) {
		t.Fatalf("override %s is a volume mount of its own, want a file in the mounted directory", file)
	}
	if !mount.ReadOnly {
		t.Errorf("the overrides' volume %q is mounted read-write at %s", mount.Name, mount.MountPath)
	}
	i := slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
	if i < 0 {
		t.Fatalf("volume %q is mounted but not defined", mount.Name)
	}
	cm := d.Spec.Template.Spec.Volumes[i].ConfigMap
	if cm == nil {
		t.Fatalf("override %s is in volume %q, which is no ConfigMap: %+v", file, mount.Name, d.Spec.Template.Spec.Volumes[i].VolumeSource)
	}
	if cm.Name != overridesConfigMap {
		t.Errorf("override %s is in the ConfigMap %q, want %s", file, cm.Name, overridesConfigMap)
	}
	if cm.Optional == nil || !*cm.Optional {
		t.Errorf("the ConfigMap %s is not optional: no pod would start before an operator creates it", cm.Name)
	}
	name := strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
	key := name // without items, each key of the ConfigMap is a file
	if len(cm.Items) > 0 {
		j := slices.IndexFunc(cm.Items, func(kp corev1.KeyToPath) bool { return path.Clean(kp.Path) == name })
		if j < 0 {
			t.Fatalf("the ConfigMap volume %q puts no key at %s (items %+v), where override reads it", mount.Name, name, cm.Items)
		}
		key = cm.Items[j].Key
	}
	if key != overridesKey {
		t.Errorf("override %s reads the key %q of the ConfigMap %s, want %q", file, key, cm.Name, overridesKey)
	}

	// The README creates and edits the ConfigMap the Deployment mounts, under
	// the key the Corefile reads.
	readme, err := os.ReadFile(deployReadme)
	if err != nil {
		t.Fatal(err)
	}
	commands := oneLineCommands(string(readme))
	for _, want := range []string{
		fmt.Sprintf("kubectl -n %s create configmap %s --from-file=%s=./overrides", d.Namespace, cm.Name, key),
		fmt.Sprintf("kubectl -n %s edit configmap %s", d.Namespace, cm.Name),
	} {
		if !strings.Contains(commands, want) {
			t.Errorf("%s does not say\n%s", deployReadme, want)
		}
	}
	if !strings.Contains(string(readme), "\n"+overridesSection+"\n") {
		t.Errorf("%s has no section %q", deployReadme, overridesSection)
	}
	if !strings.Contains(string(readme), "]("+overridesDoc+")") {
		t.Errorf("%s does not link %s", deployReadme, overridesDoc)
	} else if _, err := os.Stat(overridesDoc); err != nil {
		t.Errorf("%s links %s: %v", deployReadme, overridesDoc, err)
	}
}

// TestDeployOverridesNotApplied checks that no manifest of this directory
// is the overrides' ConfigMap, even an empty one: `kubectl apply -f` of the
// directory would reset the operator's overrides on every apply.
func TestDeployOverridesNotApplied(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(deployDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocSeparator.Split(string(data), -1) {
			if isEmptyYAML(doc) {
				continue
			}
			var meta struct {
				Kind     string            `json:"kind"`
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			if meta.Kind == "ConfigMap" && meta.Metadata.Name == overridesConfigMap {
				t.Errorf("%s document %d is the ConfigMap %s: `kubectl apply -f %s` would reset the operator's overrides on every apply; the README creates it with kubectl instead", file, i+1, overridesConfigMap, deployDir)
			}
		}
	}
}

// TestDeployOverridesLoad checks that the override line is in the server
// block TestDeployHealthfailoverBlock loads with the real plugin, and that
// the README's example file names what that block declares.
func TestDeployOverridesLoad(t *testing.T) {
	inprocess.PlaceDirective()
	m := loadManifests(t)
	want := overridePath(t, parseCorefile(t, m.configMap.Data["Corefile"]))
	loaded := parseCorefile(t, onlyPluginBlock(t, loadableCorefile(t, m)))
	if got := overridePath(t, loaded); got != want {
		t.Errorf("the loaded server block reads override %q, want %q", got, want)
	}

	// The example: `check NAME up|down|auto …` of a check the block has,
	// `drain RECORD TYPE VALUE …` of a member of one of its record sets.
	hf := pluginBlock(t, loaded)
	lines := readmeOverridesExample(t)
	for _, line := range lines {
		w := strings.Fields(line)
		switch {
		case w[0] == "check" && len(w) >= 3:
			if !slices.ContainsFunc(hf.checks, func(ck hfCheck) bool { return ck.name == w[1] }) {
				t.Errorf("the README's override %q names no check of the Corefile", line)
			}
			if !slices.Contains([]string{"up", "down", "auto"}, w[2]) {
				t.Errorf("the README's override %q: want up, down or auto", line)
			}
		case w[0] == "drain" && len(w) >= 4:
			name, qtype, value := strings.ToLower(dns.Fqdn(w[1])), strings.ToUpper(w[2]), w[3]
			if w[3] == "alias" && len(w) >= 5 {
				value = "alias " + w[4]
			}
			if !slices.ContainsFunc(hf.sets, func(s hfSet) bool {
				return s.name == name && s.qtype == qtype &&
					slices.ContainsFunc(s.members, func(mb member) bool { return mb.value == value })
			}) {
				t.Errorf("the README's override %q names no member of a record set of the Corefile", line)
			}
		default:
			t.Errorf("the README's override %q: want check NAME up|down|auto or drain RECORD TYPE VALUE", line)
		}
	}
}

// overridePath is the path of the one `override` of the Corefile's
// healthfailover block.
func overridePath(t *testing.T, blocks []caddyfile.ServerBlock) string {
	t.Helper()
	var found [][]string
	for _, sb := range blocks {
		for _, st := range statements(sb.Tokens[pluginName]) {
			if st.depth == 1 && st.words[0] == "override" {
				found = append(found, st.words[1:])
			}
		}
	}
	if len(found) != 1 || len(found[0]) != 1 {
		t.Fatalf("the %s block has override %q, want one line with one path", pluginName, found)
	}
	return found[0][0]
}

// readmeOverridesExample returns the statements of the override file the
// README's overrides section shows (its first plain ``` block), without
// comments and blank lines.
func readmeOverridesExample(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(deployReadme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+overridesSection+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", deployReadme, overridesSection)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	block := regexp.MustCompile("(?s)\n```\n(.*?)```").FindStringSubmatch(section)
	if block == nil {
		t.Fatalf("the section %q of %s shows no override file (a plain ``` block)", overridesSection, deployReadme)
	}
	var lines []string
	for line := range strings.Lines(block[1]) {
		if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if len(lines) == 0 {
		t.Fatalf("the override file the section %q of %s shows has no statement", overridesSection, deployReadme)
	}
	return lines
}
