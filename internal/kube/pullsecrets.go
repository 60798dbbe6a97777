package kube

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"hull/internal/reference"
)

// imagePullSecrets, as kubelet uses them (pkg/credentialprovider): each
// Secret the pod names, of type kubernetes.io/dockerconfigjson (or the
// older kubernetes.io/dockercfg), holds credentials by registry; those
// whose registry matches the image's are tried in turn, and with none
// the image is pulled with hull's own credentials (hull login), as a
// node's are. A Secret that is missing is an event, not a failure.

// dockerConfigEntry is one registry's credentials in a docker config.
type dockerConfigEntry struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// pullAuths are the credentials of the pod's pull secrets for image, in
// the order kubelet tries them; missing names the secrets not found.
func (k *kubelet) pullAuths(image string) (auths []*runtimeapi.AuthConfig, missing []string) {
	if len(k.pod.Spec.ImagePullSecrets) == 0 {
		return nil, nil
	}
	ref, err := reference.Parse(image)
	if err != nil {
		return nil, nil
	}
	for _, ps := range k.pod.Spec.ImagePullSecrets {
		var sec v1.Secret
		if ps.Name == "" || k.objects().GetObject("secrets", k.pod.Namespace, ps.Name, &sec) != nil {
			missing = append(missing, ps.Name)
			continue
		}
		for _, e := range secretEntries(&sec) {
			if registryMatches(e.registry, ref) {
				auths = append(auths, e.auth)
			}
		}
	}
	return auths, missing
}

type registryAuth struct {
	registry string
	auth     *runtimeapi.AuthConfig
}

// secretEntries reads a pull secret's registries and credentials
// (nothing for another type, or for data that does not parse).
func secretEntries(sec *v1.Secret) []registryAuth {
	var entries map[string]dockerConfigEntry
	switch sec.Type {
	case v1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if json.Unmarshal(secretData(sec, v1.DockerConfigJsonKey), &cfg) != nil {
			return nil
		}
		entries = cfg.Auths
	case v1.SecretTypeDockercfg:
		if json.Unmarshal(secretData(sec, v1.DockerConfigKey), &entries) != nil {
			return nil
		}
	}
	var out []registryAuth
	for reg, e := range entries {
		a := &runtimeapi.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
		if a.Username == "" && e.Auth != "" {
			if b, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
				a.Username, a.Password, _ = strings.Cut(string(b), ":")
			}
		}
		out = append(out, registryAuth{registry: reg, auth: a})
	}
	return out
}

// secretData is a key of a Secret, from data or stringData.
func secretData(sec *v1.Secret, key string) []byte {
	if b, ok := sec.Data[key]; ok {
		return b
	}
	return []byte(sec.StringData[key])
}

// registryMatches says whether a docker config key (a host, a host with a
// path prefix, or a URL, e.g. https://index.docker.io/v1/) names the
// registry of ref, as kubelet's keyring matches them.
func registryMatches(key string, ref reference.Reference) bool {
	if !strings.Contains(key, "://") {
		key = "https://" + key
	}
	u, err := url.Parse(key)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Host
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		host = "docker.io"
	}
	if host != ref.Domain {
		return false
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix == "" || prefix == "v1" || prefix == "v2" {
		return true
	}
	return ref.Path == prefix || strings.HasPrefix(ref.Path, prefix+"/")
}

// pullRequests are the pulls to try for image, in turn until one works:
// one per matching credential of the pull secrets, else one with none.
func (k *kubelet) pullRequests(image string) []*runtimeapi.PullImageRequest {
	auths, missing := k.pullAuths(image)
	if len(missing) > 0 {
		k.event(v1.EventTypeWarning, "FailedToRetrieveImagePullSecret",
			fmt.Sprintf("Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", ")))
	}
	spec := &runtimeapi.ImageSpec{Image: image}
	if len(auths) == 0 {
		return []*runtimeapi.PullImageRequest{{Image: spec, SandboxConfig: k.sandboxConfig()}}
	}
	var out []*runtimeapi.PullImageRequest
	for _, a := range auths {
		out = append(out, &runtimeapi.PullImageRequest{Image: spec, Auth: a, SandboxConfig: k.sandboxConfig()})
	}
	return out
}
