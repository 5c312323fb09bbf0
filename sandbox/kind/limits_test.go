package kind

import (
	"strings"
	"testing"
)

func TestParseLimits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limits
		err  string
	}{
		{"", Limits{}, ""},
		{"memory=1Gi,cpus=1.5,pids=1024", Limits{Memory: 1 << 30, CPUs: 1.5, PIDs: 1024}, ""},
		{" memory=512Mi ", Limits{Memory: 512 << 20}, ""},
		{"memory=-1,cpus=-1,pids=-1", Limits{Memory: -1, CPUs: -1, PIDs: -1}, ""},
		{"memory=65536Ki", Limits{Memory: 64 << 20}, ""},
		{"memory=1", Limits{}, "at least 6Mi"},
		{"memory=lots", Limits{}, "want a size"},
		{"cpus=0", Limits{}, "positive number of cores"},
		{"pids=2.5", Limits{}, "positive count"},
		{"disk=1Gi", Limits{}, `unknown key "disk"`},
		{"memory", Limits{}, "not key=value"},
	} {
		got, err := ParseLimits(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseLimits(%q) error = %v, want it to say %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLimits(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := ParseLimits(got.String()); err != nil || back != got {
			t.Errorf("ParseLimits(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestSizedMemory(t *testing.T) {
	const gi = 1 << 30
	for _, tc := range []struct{ host, want int64 }{
		{24 * gi, 2 * gi}, {12 * gi, 1.5 * gi}, {4 * gi, 1 * gi}, {0, 2 * gi},
	} {
		if got := sizedMemory(tc.host, gi, 2*gi); got != tc.want {
			t.Errorf("sizedMemory(%d) = %d, want %d", tc.host, got, tc.want)
		}
	}
}
