package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// Output as kubectl prints it: `get pods` (printers.go printPod),
// `-o yaml|json|name|jsonpath=`, and `describe pod` (describe.go).

// age is kubectl's translateTimestampSince.
func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// podRow is kubectl's printPod: NAME READY STATUS RESTARTS AGE, and
// with wide IP NODE NOMINATED NODE READINESS GATES.
func podRow(pod *v1.Pod, wide bool) []string {
	restarts := 0
	total := len(pod.Spec.Containers)
	ready := 0
	var lastRestart metav1.Time
	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	// Sidecars (sidecar.go) count in READY, and their restarts in
	// RESTARTS once the pod is initialized.
	sidecars := map[string]bool{}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			sidecars[pod.Spec.InitContainers[i].Name] = true
			total++
		}
	}
	sidecarRestarts, lastSidecarRestart := 0, metav1.Time{}
	initializing := false
	for i, c := range pod.Status.InitContainerStatuses {
		restarts += int(c.RestartCount)
		if t := c.LastTerminationState.Terminated; t != nil && lastRestart.Before(&t.FinishedAt) {
			lastRestart = t.FinishedAt
		}
		if sidecars[c.Name] {
			sidecarRestarts += int(c.RestartCount)
			if t := c.LastTerminationState.Terminated; t != nil && lastSidecarRestart.Before(&t.FinishedAt) {
				lastSidecarRestart = t.FinishedAt
			}
		}
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case sidecars[c.Name] && c.Started != nil && *c.Started:
			if c.Ready {
				ready++
			}
			continue
		case c.State.Terminated != nil:
			switch t := c.State.Terminated; {
			case t.Reason != "":
				reason = "Init:" + t.Reason
			case t.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", t.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", t.ExitCode)
			}
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing || conditionTrue(pod, v1.PodInitialized) {
		restarts, lastRestart = sidecarRestarts, lastSidecarRestart
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := pod.Status.ContainerStatuses[i]
			restarts += int(c.RestartCount)
			if t := c.LastTerminationState.Terminated; t != nil && lastRestart.Before(&t.FinishedAt) {
				lastRestart = t.FinishedAt
			}
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				reason = c.State.Terminated.Reason
			case c.State.Terminated != nil:
				if c.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Signal:%d", c.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
				}
			case c.Ready && c.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		if reason == "Completed" && hasRunning {
			reason = "NotReady"
			if conditionTrue(pod, v1.PodReady) {
				reason = "Running"
			}
		}
	}
	if pod.DeletionTimestamp != nil && pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed {
		reason = "Terminating"
	}
	rs := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		rs = fmt.Sprintf("%d (%s ago)", restarts, age(lastRestart))
	}
	row := []string{pod.Name, fmt.Sprintf("%d/%d", ready, total), reason, rs, age(pod.CreationTimestamp)}
	if wide {
		ip := "<none>"
		if len(pod.Status.PodIPs) > 0 {
			ip = pod.Status.PodIPs[0].IP
		}
		node := pod.Spec.NodeName
		if node == "" {
			node = "<none>"
		}
		row = append(row, ip, node, "<none>", "<none>")
	}
	return row
}

func conditionTrue(pod *v1.Pod, t v1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// newTable is kubectl's tab writer (printers.GetNewTabWriter).
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 6, 4, 3, ' ', 0) }

// printPods prints pods in an output format. single: the pods were
// named (one object prints as itself, not as a List).
func printPods(w io.Writer, pods []*v1.Pod, output string, allNamespaces, single bool) error {
	sort.SliceStable(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	for _, p := range pods {
		p.APIVersion, p.Kind = "v1", "Pod"
	}
	var obj any
	if single && len(pods) == 1 {
		obj = pods[0]
	} else { // several, or none: an empty List, as kubectl prints
		items := make([]v1.Pod, len(pods))
		for i, p := range pods {
			items[i] = *p
		}
		obj = &listObject{APIVersion: "v1", Kind: "List", Items: items, Metadata: listMeta{ResourceVersion: ""}}
	}
	switch {
	case output == "" || output == "wide":
		tw := newTable(w)
		head := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
		if output == "wide" {
			head = append(head, "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
		}
		if allNamespaces {
			head = append([]string{"NAMESPACE"}, head...)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		for _, p := range pods {
			row := podRow(p, output == "wide")
			if allNamespaces {
				row = append([]string{p.Namespace}, row...)
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		return tw.Flush()
	case output == "yaml":
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case output == "json":
		b, err := json.MarshalIndent(obj, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case output == "name":
		for _, p := range pods {
			fmt.Fprintf(w, "pod/%s\n", p.Name)
		}
		return nil
	case strings.HasPrefix(output, "jsonpath="):
		tmpl := strings.TrimPrefix(output, "jsonpath=")
		jp := jsonpath.New("out")
		// kubectl's --allow-missing-template-keys defaults to true: a
		// field the object lacks prints nothing.
		jp.AllowMissingKeys(true)
		if err := jp.Parse(tmpl); err != nil {
			return fmt.Errorf("error parsing jsonpath %s, %w", tmpl, err)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var data any
		if err := json.Unmarshal(b, &data); err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := jp.Execute(&buf, data); err != nil {
			return fmt.Errorf("error executing jsonpath %q: %w", tmpl, err)
		}
		_, err = w.Write(buf.Bytes())
		return err
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,jsonpath,name,wide,yaml", output)
}

// listObject is kubectl's List of several objects.
type listObject struct {
	APIVersion string   `json:"apiVersion"`
	Items      []v1.Pod `json:"items"`
	Kind       string   `json:"kind"`
	Metadata   listMeta `json:"metadata"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

// prefixWriter is kubectl's describe writer: levels of two spaces, one
// tab writer for the whole description.
type prefixWriter struct{ w *tabwriter.Writer }

func (p prefixWriter) write(level int, format string, a ...any) {
	fmt.Fprintf(p.w, strings.Repeat("  ", level)+format, a...)
}

// describeTime is kubectl's time format in describe.
func describeTime(t metav1.Time) string { return t.Time.Format(time.RFC1123Z) }

// mapString is labels or annotations as describe lists them.
func writeMap(w prefixWriter, title string, m map[string]string) {
	w.write(0, "%s:\t", title)
	if len(m) == 0 {
		w.write(0, "<none>\n")
		return
	}
	for i, k := range sortedNames(m) {
		if i > 0 {
			w.write(0, "\t")
		}
		w.write(0, "%s=%s\n", k, m[k])
	}
}

// describePod is kubectl's describe pod.
func describePod(out io.Writer, r *PodRecord) {
	pod := r.Pod
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	w := prefixWriter{tw}
	w.write(0, "Name:\t%s\n", pod.Name)
	w.write(0, "Namespace:\t%s\n", pod.Namespace)
	if pod.Spec.Priority != nil {
		w.write(0, "Priority:\t%d\n", *pod.Spec.Priority)
	}
	w.write(0, "Service Account:\t%s\n", pod.Spec.ServiceAccountName)
	if pod.Spec.NodeName == "" {
		w.write(0, "Node:\t<none>\n")
	} else {
		w.write(0, "Node:\t%s/%s\n", pod.Spec.NodeName, pod.Status.HostIP)
	}
	if pod.Status.StartTime != nil {
		w.write(0, "Start Time:\t%s\n", describeTime(*pod.Status.StartTime))
	}
	writeMap(w, "Labels", pod.Labels)
	writeMap(w, "Annotations", pod.Annotations)
	if pod.DeletionTimestamp != nil {
		w.write(0, "Status:\tTerminating (lasts %s)\n", age(*pod.DeletionTimestamp))
		if pod.DeletionGracePeriodSeconds != nil {
			w.write(0, "Termination Grace Period:\t%ds\n", *pod.DeletionGracePeriodSeconds)
		}
	} else {
		w.write(0, "Status:\t%s\n", pod.Status.Phase)
	}
	if pod.Status.Reason != "" {
		w.write(0, "Reason:\t%s\n", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		w.write(0, "Message:\t%s\n", pod.Status.Message)
	}
	w.write(0, "IP:\t%s\n", pod.Status.PodIP)
	if len(pod.Status.PodIPs) == 0 {
		w.write(0, "IPs:\t<none>\n")
	} else {
		w.write(0, "IPs:\n")
		for _, ip := range pod.Status.PodIPs {
			w.write(1, "IP:\t%s\n", ip.IP)
		}
	}
	if len(pod.Spec.InitContainers) > 0 {
		describeContainers(w, pod, "Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses)
	}
	describeContainers(w, pod, "Containers", pod.Spec.Containers, pod.Status.ContainerStatuses)
	if len(pod.Status.Conditions) > 0 {
		w.write(0, "Conditions:\n  Type\tStatus\n")
		for _, c := range pod.Status.Conditions {
			w.write(1, "%v \t%v \n", c.Type, c.Status)
		}
	}
	describeVolumes(w, pod.Spec.Volumes) // volumes.go
	w.write(0, "QoS Class:\t%s\n", pod.Status.QOSClass)
	writeMap(w, "Node-Selectors", pod.Spec.NodeSelector)
	w.write(0, "Tolerations:\t<none>\n")
	describeEvents(w, r.Events)
	tw.Flush()
}

func describeContainers(w prefixWriter, pod *v1.Pod, title string, cs []v1.Container, statuses []v1.ContainerStatus) {
	w.write(0, "%s:\n", title)
	for _, c := range cs {
		var st v1.ContainerStatus
		ok := false
		for _, s := range statuses {
			if s.Name == c.Name {
				st, ok = s, true
			}
		}
		w.write(1, "%v:\n", c.Name)
		if ok {
			w.write(2, "Container ID:\t%s\n", st.ContainerID)
		}
		w.write(2, "Image:\t%s\n", c.Image)
		if ok {
			w.write(2, "Image ID:\t%s\n", st.ImageID)
		}
		ports, hostPorts := "<none>", "<none>"
		if len(c.Ports) > 0 {
			var p, h []string
			for _, port := range c.Ports {
				p = append(p, fmt.Sprintf("%d/%s", port.ContainerPort, port.Protocol))
				h = append(h, fmt.Sprintf("%d/%s", port.HostPort, port.Protocol))
			}
			ports, hostPorts = strings.Join(p, ", "), strings.Join(h, ", ")
		}
		if len(c.Ports) > 1 {
			w.write(2, "Ports:\t%s\n", ports)
			w.write(2, "Host Ports:\t%s\n", hostPorts)
		} else {
			w.write(2, "Port:\t%s\n", ports)
			w.write(2, "Host Port:\t%s\n", hostPorts)
		}
		if len(c.Command) > 0 {
			w.write(2, "Command:\n")
			for _, a := range c.Command {
				w.write(3, "%s\n", a)
			}
		}
		if len(c.Args) > 0 {
			w.write(2, "Args:\n")
			for _, a := range c.Args {
				w.write(3, "%s\n", a)
			}
		}
		if ok {
			describeState(w, "State", st.State)
			if st.LastTerminationState.Terminated != nil {
				describeState(w, "Last State", st.LastTerminationState)
			}
			w.write(2, "Ready:\t%s\n", printBool(st.Ready))
			w.write(2, "Restart Count:\t%d\n", st.RestartCount)
		}
		for _, rl := range []struct {
			name string
			list v1.ResourceList
		}{{"Limits", c.Resources.Limits}, {"Requests", c.Resources.Requests}} {
			if len(rl.list) == 0 {
				continue
			}
			w.write(2, "%s:\n", rl.name)
			var names []string
			for n := range rl.list {
				names = append(names, string(n))
			}
			sort.Strings(names)
			for _, n := range names {
				q := rl.list[v1.ResourceName(n)]
				w.write(3, "%s:\t%s\n", n, q.String())
			}
		}
		describeEnv(w, pod, c) // volumes.go
		describeMounts(w, c)   // volumes.go
	}
}

func printBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// describeState is kubectl's describeStatus.
func describeState(w prefixWriter, name string, s v1.ContainerState) {
	switch {
	case s.Running != nil:
		w.write(2, "%s:\tRunning\n", name)
		w.write(3, "Started:\t%s\n", describeTime(s.Running.StartedAt))
	case s.Waiting != nil:
		w.write(2, "%s:\tWaiting\n", name)
		if s.Waiting.Reason != "" {
			w.write(3, "Reason:\t%s\n", s.Waiting.Reason)
		}
	case s.Terminated != nil:
		t := s.Terminated
		w.write(2, "%s:\tTerminated\n", name)
		if t.Reason != "" {
			w.write(3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			w.write(3, "Message:\t%s\n", t.Message)
		}
		w.write(3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			w.write(3, "Signal:\t%d\n", t.Signal)
		}
		w.write(3, "Started:\t%s\n", describeTime(t.StartedAt))
		w.write(3, "Finished:\t%s\n", describeTime(t.FinishedAt))
	default:
		w.write(2, "%s:\tWaiting\n", name)
	}
}

// describeEvents is kubectl's events table.
func describeEvents(w prefixWriter, events []Event) {
	if len(events) == 0 {
		w.write(0, "Events:\t<none>\n")
		return
	}
	// kubectl sorts by the last time each was seen.
	events = append([]Event(nil), events...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Last.Before(events[j].Last) })
	w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	w.write(1, "----\t------\t----\t----\t-------\n")
	for _, e := range events {
		interval := age(metav1.NewTime(e.First))
		if e.Count > 1 {
			interval = fmt.Sprintf("%s (x%d over %s)", age(metav1.NewTime(e.Last)), e.Count, age(metav1.NewTime(e.First)))
		}
		w.write(1, "%v\t%v\t%s\t%v\t%v\n", e.Type, e.Reason, interval, e.From, strings.TrimSpace(e.Message))
	}
}

// printEvents is kubectl's get events (printEvent): LAST SEEN, TYPE,
// REASON, OBJECT, MESSAGE, oldest first by last time. It reports
// whether there were any.
func printEvents(w io.Writer, recs []*PodRecord, allNamespaces bool) bool {
	type row struct {
		ns, pod string
		e       Event
	}
	var rows []row
	for _, r := range recs {
		for _, e := range r.Events {
			rows = append(rows, row{r.Pod.Namespace, r.Pod.Name, e})
		}
	}
	if len(rows) == 0 {
		return false
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].e.Last.Before(rows[j].e.Last) })
	tw := newTable(w)
	head := "LAST SEEN\tTYPE\tREASON\tOBJECT\tMESSAGE"
	if allNamespaces {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		line := fmt.Sprintf("%s\t%s\t%s\tpod/%s\t%s", age(metav1.NewTime(r.e.Last)), r.e.Type, r.e.Reason, r.pod, strings.TrimSpace(r.e.Message))
		if allNamespaces {
			line = r.ns + "\t" + line
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	return true
}
