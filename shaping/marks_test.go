package shaping

import (
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

func TestMarks(t *testing.T) {
	c := NewClassifier(configs.AppClasses{
		{Name: "skype", DSCP: 46, DSCPToClient: true},
		{Name: "backup", DSCP: 8},
		{Name: "web"},
	})
	for _, tc := range []struct {
		app          string
		dest, client configs.DSCP
	}{
		{"skype", 46, 46},
		{"backup", 8, 0},
		{"web", 0, 0},
		{Other, 0, 0},
		{"unknown", 0, 0},
	} {
		dest, client := c.Marks(tc.app)
		if dest.DSCP() != tc.dest || client.DSCP() != tc.client {
			t.Errorf("Marks(%q) = %d, %d; want %d, %d", tc.app, dest.DSCP(), client.DSCP(), tc.dest, tc.client)
		}
	}
	if n := testing.AllocsPerRun(100, func() { c.Marks("backup") }); n != 0 {
		t.Errorf("Marks allocates %v times", n)
	}
	var zero Classifier
	if d, _ := zero.Marks("skype"); !d.IsZero() {
		t.Error("the zero Classifier marks")
	}
}
