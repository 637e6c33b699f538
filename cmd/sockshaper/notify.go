package main

import (
	"log/slog"
	"strconv"
	"time"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier tells systemd what the daemon is doing, for a unit of Type=notify
// (deploy/systemd/sockshaper.service): READY=1 once both listeners accept, so units
// ordered after sockshaper start when the proxy really serves; RELOADING=1 and then
// READY=1 around a SIGHUP reload, so `systemctl reload` reports the reload; and
// STOPPING=1 when the drain begins. Without $NOTIFY_SOCKET (not under systemd) every
// call does nothing.
//
// The protocol is one datagram per state change; go-systemd's daemon package sends
// it, the library systemd's own Go users keep.
type notifier struct {
	log *slog.Logger
}

// ready reports that the proxy serves (at start and after each reload).
func (n notifier) ready() { n.send(sdaemon.SdNotifyReady + "\nSTATUS=serving") }

// reloading reports that a reload began. systemd 253 and later want the time the
// reload started with it (MONOTONIC_USEC, CLOCK_MONOTONIC in µs); older ones ignore it.
func (n notifier) reloading() {
	n.send(sdaemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicMicros(), 10) + "\nSTATUS=reloading")
}

// stopping reports that the drain began.
func (n notifier) stopping() { n.send(sdaemon.SdNotifyStopping + "\nSTATUS=draining") }

func (n notifier) send(state string) {
	if _, err := sdaemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "err", err)
	}
}

// monotonicMicros is CLOCK_MONOTONIC in microseconds, the clock systemd compares with.
func monotonicMicros() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / int64(time.Microsecond)
}
