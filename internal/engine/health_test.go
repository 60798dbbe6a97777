package engine

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestHealthFlags(t *testing.T) {
	h, err := HealthFlags{}.Healthcheck()
	if h != nil || err != nil {
		t.Errorf("no flags: %+v %v", h, err)
	}
	h, err = HealthFlags{NoHealthcheck: true}.Healthcheck()
	if err != nil || !reflect.DeepEqual(h.Test, []string{"NONE"}) || h.Probes() {
		t.Errorf("--no-healthcheck: %+v %v", h, err)
	}
	h, err = HealthFlags{Cmd: "curl -f x", Interval: time.Second, Retries: 2}.Healthcheck()
	if err != nil || !reflect.DeepEqual(h, &HealthConfig{Test: []string{"CMD-SHELL", "curl -f x"}, Interval: time.Second, Retries: 2}) {
		t.Errorf("--health-cmd: %+v %v", h, err)
	}
	for _, bad := range []HealthFlags{
		{NoHealthcheck: true, Retries: 1}, {Interval: -time.Second}, {Timeout: time.Microsecond}, {Retries: -1},
	} {
		if _, err := bad.Healthcheck(); err == nil || !strings.Contains(err.Error(), "health") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestMergeHealthFieldByField(t *testing.T) {
	img := &HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, StartInterval: time.Millisecond, Retries: 5}
	got := mergeHealth(&HealthConfig{Timeout: time.Minute, StartPeriod: time.Hour}, img)
	want := &HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: time.Minute, StartPeriod: time.Hour, StartInterval: time.Millisecond, Retries: 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged %+v, want %+v", got, want)
	}
	if got := mergeHealth(nil, img); !reflect.DeepEqual(got, img) || got == img {
		t.Errorf("the image's alone: %+v", got)
	}
}

func TestHealthResultRules(t *testing.T) {
	start := time.Now()
	hc := &HealthConfig{Test: []string{"CMD", "x"}, StartPeriod: time.Minute, Retries: 2}
	st := healthState{Health: Health{Status: HealthStarting}}
	fail := HealthResult{Start: start.Add(time.Second), ExitCode: 1}
	st.apply(fail, hc, start)
	st.apply(fail, hc, start)
	if st.Status != HealthStarting || st.FailingStreak != 0 {
		t.Errorf("failures in the start period counted: %+v", st)
	}
	st.apply(HealthResult{Start: start.Add(2 * time.Second)}, hc, start)
	if st.Status != HealthHealthy {
		t.Errorf("a success: %+v", st)
	}
	st.apply(fail, hc, start) // healthy: counted even within the start period
	if st.Status != HealthHealthy || st.FailingStreak != 1 {
		t.Errorf("one failure: %+v", st)
	}
	st.apply(fail, hc, start)
	if st.Status != HealthUnhealthy || st.FailingStreak != 2 {
		t.Errorf("retries reached: %+v", st)
	}
	for range 10 {
		st.apply(fail, hc, start)
	}
	if len(st.Log) != 5 {
		t.Errorf("log of %d", len(st.Log))
	}
}
