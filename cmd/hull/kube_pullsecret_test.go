package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"hull/internal/testenv"
)

// imagePullSecrets: a dockerconfigjson Secret's credentials for the
// image's registry are used for its pull; without them the registry's
// 401 is the pull error; a missing Secret is an event.
func TestKubeImagePullSecrets(t *testing.T) {
	root, _ := kubeEnv(t)
	reg := testenv.NewAuthRegistry(t, "kube", "s3cret")
	fx := testenv.PushFixturesT(t, reg, testenv.FixBusybox)
	auth := base64.StdEncoding.EncodeToString([]byte("kube:s3cret"))
	config := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, "http://"+reg.Addr, auth)))
	// Always: once one pod has pulled the image, the node has it (as
	// with kubelet), and only a pull asks the registry again.
	pod := func(name, secrets string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  terminationGracePeriodSeconds: 1\n%s  containers:\n  - name: c\n    image: %s\n    imagePullPolicy: Always\n    command: [\"sleep\", \"600\"]\n", name, secrets, fx.Busybox.Ref)
	}
	applyYAML(t, root, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: regcred
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: %s
---
`, config)+pod("with", "  imagePullSecrets:\n  - name: regcred\n  - name: absent\n")+"---\n"+pod("without", ""))
	waitPod(t, root, "with", "Running", func(p podJSON) bool { return p.Status.Phase == "Running" })
	p := waitPod(t, root, "without", "ErrImagePull", func(p podJSON) bool { return p.waiting() == "ErrImagePull" || p.waiting() == "ImagePullBackOff" })
	if p.waiting() == "ErrImagePull" && !strings.Contains(strings.ToLower(p.Status.ContainerStatuses[0].State.Waiting.Message), "unauthorized") {
		t.Errorf("without: %q, want the registry's unauthorized", p.Status.ContainerStatuses[0].State.Waiting.Message)
	}
	if out := mustKube(t, root, "describe", "pod", "with"); !strings.Contains(out, "Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed.") {
		t.Errorf("describe with: no event for the missing secret:\n%s", out)
	}
}
