package main

import (
	"fmt"
	"log/slog"

	"github.com/sockshaper/sockshaper/configs"
)

// noLimits is what check-config and the log say of a config that sets no
// limit: without a shaping section nothing is shaped, while the embedded
// default (no -config) limits students, which surprises an operator who
// wrote a config from scratch.
const noLimits = "no limits configured: traffic is not shaped"

// noLimitsHint says what to do about noLimits.
const noLimitsHint = "add a shaping: section (see sockshaper.example.yaml); " +
	"the embedded default, used without -config, limits its default group students"

// shapingNote is check-config's line on shaping.
func shapingNote(cfg *configs.Config) string {
	s := &cfg.Shaping
	if !s.Limits() {
		return fmt.Sprintf("shaping: %s (%s)", noLimits, noLimitsHint)
	}
	return fmt.Sprintf("shaping: %d groups, default group %q, %d app limits", len(s.Groups), s.DefaultGroup, len(s.Apps))
}

// logShaping says at start and reload whether the config shapes traffic:
// a warning when it sets no limit at all.
func logShaping(log *slog.Logger, cfg *configs.Config) {
	s := &cfg.Shaping
	if !s.Limits() {
		log.Warn(noLimits, "hint", noLimitsHint)
		return
	}
	log.Info("shaping", "groups", len(s.Groups), "default_group", s.DefaultGroup, "app_limits", len(s.Apps))
}
