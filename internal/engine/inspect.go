package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"hull/internal/spec"
)

// Inspect is `hull inspect CONTAINER`, shaped like docker's.
type Inspect struct {
	ID              string           `json:"Id"`
	Created         time.Time        `json:"Created"`
	Path            string           `json:"Path"`
	Args            []string         `json:"Args"`
	State           InspectState     `json:"State"`
	Image           string           `json:"Image"` // image ID
	ImageName       string           `json:"ImageName"`
	ImageDigest     string           `json:"ImageDigest"`
	ResolvConfPath  string           `json:"ResolvConfPath"`
	HostnamePath    string           `json:"HostnamePath"`
	HostsPath       string           `json:"HostsPath"`
	LogPath         string           `json:"LogPath"`
	Name            string           `json:"Name"`
	RestartCount    int              `json:"RestartCount"`
	Driver          string           `json:"Driver"`
	Platform        string           `json:"Platform"`
	MountLabel      string           `json:"MountLabel"`
	ProcessLabel    string           `json:"ProcessLabel"`
	AppArmorProfile string           `json:"AppArmorProfile"`
	ExecIDs         []string         `json:"ExecIDs"`
	GraphDriver     GraphDriver      `json:"GraphDriver"`
	Config          InspectConfig    `json:"Config"`
	HostConfig      InspectHost      `json:"HostConfig"`
	NetworkSettings NetworkSettings  `json:"NetworkSettings"`
	Mounts          []spec.Mount     `json:"Mounts"`
	HullLifecycle   InspectLifecycle `json:"HullLifecycle"`
}

// GraphDriver is docker's GraphDriver block: the snapshotter, and where
// the container's root filesystem is mounted.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// InspectState is docker's State block.
type InspectState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	Health     *Health   `json:"Health,omitempty"`
}

// InspectConfig is docker's Config block.
type InspectConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Volumes      map[string]struct{} `json:"Volumes"`
	OnBuild      []string            `json:"OnBuild"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Image        string              `json:"Image"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	StopTimeout  int                 `json:"StopTimeout,omitempty"`
	Healthcheck  *HealthConfig       `json:"Healthcheck,omitempty"`
}

// InspectHost is docker's HostConfig block.
type InspectHost struct {
	NetworkMode     string                   `json:"NetworkMode"`
	PortBindings    map[string][]PortBinding `json:"PortBindings"`
	PublishAllPorts bool                     `json:"PublishAllPorts"`
	DNS             []string                 `json:"Dns"`
	DNSSearch       []string                 `json:"DnsSearch"`
	DNSOptions      []string                 `json:"DnsOptions"`
	ExtraHosts      []string                 `json:"ExtraHosts"`
	RestartPolicy   struct {
		Name              string `json:"Name"`
		MaximumRetryCount int    `json:"MaximumRetryCount"`
	} `json:"RestartPolicy"`
	AutoRemove        bool              `json:"AutoRemove"`
	Privileged        bool              `json:"Privileged"`
	ReadonlyRootfs    bool              `json:"ReadonlyRootfs"`
	CapAdd            []string          `json:"CapAdd"`
	CapDrop           []string          `json:"CapDrop"`
	SecurityOpt       []string          `json:"SecurityOpt"`
	Memory            int64             `json:"Memory"`
	MemorySwap        int64             `json:"MemorySwap"`
	MemoryReservation int64             `json:"MemoryReservation"`
	NanoCpus          int64             `json:"NanoCpus"`
	CpuShares         int64             `json:"CpuShares"`
	CpusetCpus        string            `json:"CpusetCpus"`
	PidsLimit         int64             `json:"PidsLimit"`
	Ulimits           []spec.Ulimit     `json:"Ulimits"`
	Tmpfs             map[string]string `json:"Tmpfs"`
	Init              bool              `json:"Init"`
	GroupAdd          []string          `json:"GroupAdd"`
	// The namespace, device and resource flags (docker's names).
	PidMode, IpcMode, UTSMode, CgroupnsMode string
	// UsernsMode and IDMappings are podman's (userns.go).
	UsernsMode               string
	IDMappings               *IDMappings `json:",omitempty"`
	ShmSize                  int64
	Sysctls, Annotations     map[string]string `json:",omitempty"`
	OomScoreAdj              int
	OomKillDisable           bool
	CgroupParent, CpusetMems string
	CpuPeriod, CpuQuota      int64
	BlkioWeight              uint16
	Devices                  []spec.Device
	DeviceCgroupRules        []string
	// LogConfig is the log driver and options the container was created
	// with; json-file, local and k8s-file all mean hull's log file (CRI's
	// format, at LogPath).
	LogConfig LogConfig `json:"LogConfig"`
}

// InspectLifecycle is hull's addition: the stage reached, for `why`.
type InspectLifecycle struct {
	Stage        string    `json:"Stage"`
	BackoffUntil time.Time `json:"BackoffUntil,omitempty"`
	Signal       int       `json:"Signal,omitempty"`
	MemoryPeak   int64     `json:"MemoryPeak,omitempty"`
	MemoryLimit  int64     `json:"MemoryLimit,omitempty"`
	MonitorPid   int       `json:"MonitorPid,omitempty"`
}

// Inspect builds the inspect document.
func (e *Engine) Inspect(c *Container) *Inspect {
	o := c.Config.Spec
	d := &Inspect{
		ID: c.ID, Created: c.Created, Path: c.Config.Path, Args: c.Config.Args,
		Image: c.ImageID, ImageName: c.ImageName(), ImageDigest: c.ImageDigest, LogPath: e.ContainerLogPath(c),
		Name: "/" + c.Name, RestartCount: c.RestartCount, Mounts: o.Mounts,
		Driver: e.cfg.Storage.Snapshotter, Platform: "linux",
		GraphDriver: GraphDriver{Name: e.cfg.Storage.Snapshotter, Data: map[string]string{"MergedDir": e.rootfs(c.ID)}},
		State: InspectState{
			Status: c.State, Running: c.State == StateRunning || c.State == StatePaused, Paused: c.State == StatePaused,
			Restarting: c.State == StateRestarting, OOMKilled: c.OOMKilled, Dead: c.State == StateDead,
			Pid: c.Pid, ExitCode: c.ExitCode, Error: c.Error, StartedAt: c.Started, FinishedAt: c.Finished,
		},
		Config: InspectConfig{
			Hostname: o.Hostname, User: o.User, Tty: o.TTY, OpenStdin: c.Config.OpenStdin, Env: o.Env, Cmd: o.Cmd,
			Image: c.ImageName(), WorkingDir: o.WorkingDir, Entrypoint: o.Entrypoint, Labels: c.Config.Labels,
			StopSignal: c.Config.StopSignal, StopTimeout: c.Config.StopTimeout,
		},
		HullLifecycle: InspectLifecycle{Stage: c.Stage, BackoffUntil: c.BackoffUntil, Signal: c.Signal, MemoryPeak: c.MemoryPeak,
			MemoryLimit: c.MemoryLimit, MonitorPid: c.MonitorPid},
	}
	if eff := c.Config.Effective; eff != nil {
		cf := &d.Config
		cf.Env, cf.Cmd, cf.Entrypoint, cf.User, cf.WorkingDir = eff.Env, eff.Cmd, eff.Entrypoint, eff.User, eff.WorkingDir
		cf.Labels, cf.ExposedPorts, cf.StopSignal = eff.Labels, eff.ExposedPorts, eff.StopSignal
	}
	e.inspectHealth(c, d)
	d.Config.Domainname = o.Domainname
	for name, path := range map[string]*string{"resolv.conf": &d.ResolvConfPath, "hostname": &d.HostnamePath, "hosts": &d.HostsPath} {
		if _, err := os.Stat(filepath.Join(e.persistDir(c.ID), name)); err == nil {
			*path = filepath.Join(e.persistDir(c.ID), name)
		}
	}
	if c.Config.Pod != "" {
		for name, path := range e.podEtcFiles(c.Config.Pod) {
			switch name {
			case "resolv.conf":
				d.ResolvConfPath = path
			case "hostname":
				d.HostnamePath = path
			case "hosts":
				d.HostsPath = path
			}
		}
	}
	if d.State.Running && c.State == StateRunning {
		d.State.Status = StateRunning
	}
	d.NetworkSettings = e.networkSettings(context.Background(), c)
	h := &d.HostConfig
	h.NetworkMode = o.Network
	if h.NetworkMode == "" {
		h.NetworkMode = "none"
	}
	h.PortBindings = map[string][]PortBinding{}
	for _, p := range c.Config.Net.Ports {
		key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		b := PortBinding{HostPort: ""}
		if p.HostIP.IsValid() {
			b.HostIP = p.HostIP.String()
		}
		if p.HostPort != 0 {
			b.HostPort = strconv.Itoa(int(p.HostPort))
			if p.HostPortEnd != 0 {
				b.HostPort += "-" + strconv.Itoa(int(p.HostPortEnd))
			}
		}
		h.PortBindings[key] = append(h.PortBindings[key], b)
	}
	n := c.Config.Net
	h.PublishAllPorts, h.DNS, h.DNSSearch, h.DNSOptions, h.ExtraHosts = n.PublishAll, n.DNS, n.DNSSearch, n.DNSOptions, n.ExtraHosts
	h.RestartPolicy.Name, h.RestartPolicy.MaximumRetryCount = c.Config.Restart.Name, c.Config.Restart.MaxRetries
	h.AutoRemove, h.Privileged, h.ReadonlyRootfs = c.Config.AutoRemove, o.Privileged, o.ReadOnlyRootfs
	h.CapAdd, h.CapDrop = o.CapAdd, o.CapDrop
	if o.NoNewPrivileges == nil || *o.NoNewPrivileges {
		h.SecurityOpt = append(h.SecurityOpt, "no-new-privileges")
	}
	if o.Seccomp != "" {
		h.SecurityOpt = append(h.SecurityOpt, "seccomp="+o.Seccomp)
	}
	h.Memory, h.MemorySwap, h.NanoCpus, h.CpuShares = o.Memory, o.MemorySwap, o.NanoCPUs, o.CPUShares
	h.CpusetCpus, h.PidsLimit, h.Ulimits, h.Tmpfs, h.Init = o.CpusetCpus, o.PidsLimit, o.Ulimits, o.Tmpfs, o.Init
	h.GroupAdd = o.GroupAdd
	h.PidMode, h.IpcMode, h.UTSMode, h.CgroupnsMode = o.PidMode, o.IpcMode, o.UTSMode, o.CgroupnsMode
	h.UsernsMode, h.IDMappings = usernsInspect(o)
	if h.IpcMode == "" {
		h.IpcMode = "private"
	}
	if h.CgroupnsMode == "" {
		h.CgroupnsMode = "private"
	}
	if h.ShmSize = o.ShmSize; h.ShmSize == 0 && h.IpcMode != "none" {
		h.ShmSize = 64 << 20
	}
	h.Sysctls, h.Annotations, h.OomKillDisable = o.Sysctls, c.Config.Annotations, o.OomKillDisable
	if o.OomScoreAdj != nil {
		h.OomScoreAdj = *o.OomScoreAdj
	}
	h.CgroupParent, h.CpusetMems, h.CpuPeriod, h.CpuQuota = o.CgroupParent, o.CpusetMems, o.CPUPeriod, o.CPUQuota
	h.BlkioWeight, h.DeviceCgroupRules = o.BlkioWeight, o.DeviceCgroupRules
	h.MemoryReservation = o.MemoryReservation
	if h.Devices = o.Devices; h.Devices == nil {
		h.Devices = []spec.Device{}
	}
	h.LogConfig = c.Config.LogConfig
	if h.LogConfig.Type == "" {
		h.LogConfig.Type = DefaultLogDriver
	}
	if h.LogConfig.Config == nil {
		h.LogConfig.Config = map[string]string{}
	}
	if h.LogConfig.Type == "none" {
		d.LogPath = ""
	}
	if d.Mounts == nil {
		d.Mounts = []spec.Mount{}
	}
	return d
}

// IsRunning: the container's processes exist (running or paused).
func (c *Container) IsRunning() bool { return c.State == StateRunning || c.State == StatePaused }
