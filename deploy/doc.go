// Package deploy holds the files that install and run sockshaper outside a
// developer's shell (the systemd unit, the Debian package's description, its
// maintainer scripts and logrotate snippet) and, in its tests, the checks of those
// files and of the repository's Dockerfile and compose file with the real tools:
// systemd-analyze, dpkg, logrotate, buildah and the Compose Specification's
// reference loader. It has no Go code of its own.
package deploy
