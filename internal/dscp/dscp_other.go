//go:build !linux

package dscp

import "errors"

// setTOS is not implemented beyond Linux, which sockshaper is deployed on.
func setTOS(fd, tos int) error { return errors.ErrUnsupported }

// controlMessages marks no datagram beyond Linux.
func controlMessages(tos int) []byte { return nil }
