// Package health checks tenantline's health contract against the two evaluators GitOps tools use:
// kstatus (sigs.k8s.io/cli-utils, what Flux's kustomize-controller waits on) and Argo CD's own Lua
// health evaluator, fed with the Argo CD health snippet the chart ships.
//
// The inputs are objects captured from a real operator in every state it produces
// (tests/fixtures/health, written by the e2e test gitops_health; TENANTLINE_HEALTH_FIXTURES
// points elsewhere, e.g. at a fresh capture). Each file is <Kind>.<state>.json.
package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
	"github.com/argoproj/gitops-engine/pkg/health"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// want is the contract (issue 10, DESIGN §3): what each state must read as.
type want struct {
	kstatus status.Status
	argo    health.HealthStatusCode
}

var contract = map[string]want{
	// Synthetic (the "creating" capture with status removed): kstatus reads an object without
	// status as Current, which is why the CRDs default status to {observedGeneration: -1}; every
	// live object has it (the "creating" captures show it right after the create). Argo CD's check
	// does not rely on the default.
	"no-status":           {status.CurrentStatus, health.HealthStatusProgressing},
	"creating":            {status.InProgressStatus, health.HealthStatusProgressing},
	"waiting-for-parent":  {status.InProgressStatus, health.HealthStatusProgressing},
	"spec-changed":        {status.InProgressStatus, health.HealthStatusProgressing},
	"ready":               {status.CurrentStatus, health.HealthStatusHealthy},
	"provider-down":       {status.InProgressStatus, health.HealthStatusProgressing},
	"rejected":            {status.FailedStatus, health.HealthStatusDegraded},
	"credentials-invalid": {status.FailedStatus, health.HealthStatusDegraded},
	"deleting":            {status.TerminatingStatus, health.HealthStatusProgressing},
}

var kinds = []string{"ProviderConfig", "ClusterProviderConfig", "SubAccount", "TeamMember", "PhoneNumber"}

type fixture struct {
	kind, state string
	obj         *unstructured.Unstructured
}

func fixtures(t *testing.T) []fixture {
	dir := os.Getenv("TENANTLINE_HEALTH_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "..", "tests", "fixtures", "health")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s (%v)", dir, err)
	}
	sort.Strings(files)
	var out []fixture
	for _, f := range files {
		parts := strings.SplitN(strings.TrimSuffix(filepath.Base(f), ".json"), ".", 2)
		if len(parts) != 2 {
			t.Fatalf("%s: want <Kind>.<state>.json", f)
		}
		if _, ok := contract[parts[1]]; !ok {
			t.Fatalf("%s: unknown state %q", f, parts[1])
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil { // integers as int64, as the API machinery reads them
			t.Fatalf("%s: %v", f, err)
		}
		if obj.GetKind() != parts[0] {
			t.Fatalf("%s holds a %s", f, obj.GetKind())
		}
		out = append(out, fixture{parts[0], parts[1], obj})
		if parts[1] == "creating" {
			// The CRDs default status to {observedGeneration: -1}, so a live object never lacks
			// status; one from a cluster whose CRD predates that default would.
			bare := obj.DeepCopy()
			unstructured.RemoveNestedField(bare.Object, "status")
			out = append(out, fixture{parts[0], "no-status", bare})
		}
	}
	seen := map[string]bool{}
	for _, f := range out {
		seen[f.kind] = true
	}
	for _, k := range kinds {
		if !seen[k] {
			t.Errorf("no fixture of kind %s", k)
		}
	}
	return out
}

// condition returns the status and message of condition type_ of obj.
func condition(obj *unstructured.Unstructured, type_ string) (string, string, string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == type_ {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s, r, msg
		}
	}
	return "", "", ""
}

// argoOverrides parses the chart's argocd-cm snippet the way Argo CD does: merged into an
// argocd-cm as Argo CD's install creates it, read by Argo CD's settings manager.
func argoOverrides(t *testing.T) lua.ResourceHealthOverrides {
	snippet, err := os.ReadFile(filepath.Join("..", "..", "charts", "tenantline", "argocd", "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var patch corev1.ConfigMap
	if err := yaml.UnmarshalStrict(snippet, &patch); err != nil {
		t.Fatalf("argocd-cm snippet: %v", err)
	}
	var script string
	for _, kind := range kinds {
		got, ok := patch.Data["resource.customizations.health.tenantline.io_"+kind]
		if !ok || (script != "" && got != script) {
			t.Fatalf("argocd-cm snippet: the health check of %s is missing or differs from the others", kind)
		}
		script = got
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: "argocd", Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"}},
		Data:       patch.Data,
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-secret", Namespace: "argocd", Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"}},
		Data:       map[string][]byte{"server.secretkey": []byte("test")},
	}
	mgr := settings.NewSettingsManager(context.Background(), fake.NewClientset(cm, secret), "argocd")
	overrides, err := mgr.GetResourceOverrides()
	if err != nil {
		t.Fatalf("Argo CD settings: %v", err)
	}
	return lua.ResourceHealthOverrides(overrides)
}

func TestHealthContract(t *testing.T) {
	log.SetLevel(log.WarnLevel) // Argo CD's settings manager logs its informers at info
	overrides := argoOverrides(t)
	var rows []string
	for _, f := range fixtures(t) {
		name := f.kind + "/" + f.state
		w := contract[f.state]
		_, stalledReason, stalledMsg := condition(f.obj, "Stalled")
		_, readyReason, _ := condition(f.obj, "Ready")

		// kstatus, as Flux computes it.
		res, err := status.Compute(f.obj)
		if err != nil {
			t.Errorf("%s: kstatus: %v", name, err)
			continue
		}
		if res.Status != w.kstatus {
			t.Errorf("%s: kstatus %s, want %s (%s)", name, res.Status, w.kstatus, res.Message)
		}
		if w.kstatus == status.FailedStatus && res.Message != stalledMsg {
			t.Errorf("%s: kstatus message %q, want the Stalled message %q", name, res.Message, stalledMsg)
		}

		// Argo CD: the Lua script alone, and the application controller's path (gitops-engine's
		// GetResourceHealth with the overrides from argocd-cm).
		vm := lua.VM{ResourceOverrides: overrides}
		script, _, err := vm.GetHealthScript(f.obj)
		if err != nil || script == "" {
			t.Errorf("%s: Argo CD found no health script (%v)", name, err)
			continue
		}
		byLua, err := vm.ExecuteHealthLua(f.obj, script)
		if err != nil {
			t.Errorf("%s: Argo CD Lua: %v", name, err)
			continue
		}
		byController, err := health.GetResourceHealth(f.obj, overrides)
		if err != nil {
			t.Errorf("%s: Argo CD health: %v", name, err)
			continue
		}
		for _, got := range []*health.HealthStatus{byLua, byController} {
			if got.Status != w.argo {
				t.Errorf("%s: Argo CD %s (%q), want %s", name, got.Status, got.Message, w.argo)
			}
		}
		if w.argo == health.HealthStatusDegraded && byController.Message != stalledMsg {
			t.Errorf("%s: Argo CD message %q, want the Stalled message %q", name, byController.Message, stalledMsg)
		}
		reason := readyReason
		if stalledReason != "" && w.kstatus == status.FailedStatus {
			reason = stalledReason
		}
		if reason == "" {
			reason = "-"
		}
		gen, _, _ := unstructured.NestedInt64(f.obj.Object, "status", "observedGeneration")
		rows = append(rows, fmt.Sprintf("%-22s %-19s %3d/%-3d %-24s %-12s %-12s %-12s %s", f.kind, f.state,
			f.obj.GetGeneration(), gen, reason, res.Status, byLua.Status, byController.Status, truncate(byController.Message, 90)))
	}
	header := fmt.Sprintf("%-22s %-19s %-7s %-24s %-12s %-12s %-12s %s", "KIND", "STATE", "GEN/OBS", "REASON", "KSTATUS", "ARGO(LUA)", "ARGO(APP)", "ARGO MESSAGE")
	fmt.Println(header + "\n" + strings.Join(rows, "\n"))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
