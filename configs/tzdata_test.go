package configs

// The tests load time zones from the database the binary embeds, not the host's.
import _ "time/tzdata"
