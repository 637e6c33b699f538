package slapdtest

import (
	"fmt"
	"strings"
	"text/template"
)

// confTemplate is slapd.conf.
func confTemplate() *template.Template {
	return template.Must(template.New("slapd.conf").Parse(`# throwaway slapd for sockshaper's tests
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
{{if .MemberOf}}moduleload memberof
moduleload refint
{{end}}pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
TLSCACertificateFile {{.Dir}}/ca.pem
TLSCertificateFile {{.Dir}}/cert.pem
TLSCertificateKeyFile {{.Dir}}/key.pem

database mdb
maxsize 16777216
suffix "{{.Suffix}}"
rootdn "{{.RootDN}}"
rootpw {{.RootPW}}
directory {{.Dir}}/db
{{if .MemberOf}}overlay memberof
memberof-refint TRUE
overlay refint
refint_attributes member
{{end}}access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="{{.ServiceDN}}" read
  by * none
`))
}

// data is the directory: the tree, the service account, the users and the groups
// (groups last: the memberof overlay needs their members to exist).
func data() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Campus\ndc: campus\n\n", Suffix)
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, Suffix, ou)
	}
	fmt.Fprintf(&b, "dn: %s\nobjectClass: person\ncn: sockshaper\nsn: service\nuserPassword: %s\n\n", ServiceDN, ServicePassword)
	for _, u := range []string{"alice", "bob", "carol", "dave", OddUser} {
		cn := u
		if u == OddUser {
			cn = "odd user"
		}
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n",
			UserDN(u), u, cn, cn, Password(u))
	}
	for _, g := range []struct{ dn, cn string }{{StudentsGroup, "students"}, {StaffGroup, "staff"}} {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: groupOfNames\ncn: %s\n", g.dn, g.cn)
		for _, u := range []string{"alice", "bob", "carol", "dave", OddUser} {
			for _, ug := range Users()[u] {
				if ug == g.dn {
					fmt.Fprintf(&b, "member: %s\n", UserDN(u))
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
