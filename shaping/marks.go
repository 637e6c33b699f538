package shaping

import "github.com/sockshaper/sockshaper/internal/dscp"

// Marks returns the DSCP marks of app class app (apps.<class>.dscp): the one for
// packets toward destinations, and the one for packets toward the client, which
// is the zero Mark unless the class sets dscp_to_client. [Other] and unknown
// classes are unmarked. It allocates nothing, so the UDP relay may ask per
// datagram; a reload's new Classifier carries the new marks.
func (c *Classifier) Marks(app string) (toDestination, toClient dscp.Mark) {
	for i := range c.classes {
		if c.classes[i].name == app {
			return c.classes[i].mark, c.classes[i].toClient
		}
	}
	return dscp.Mark{}, dscp.Mark{}
}
