// Command coredns is CoreDNS, from its official module (github.com/coredns/coredns), with only the
// plugins the local node's Corefile uses (hack/node.sh): the cluster's DNS on the pod bridge, so
// pods resolve Service names as in any cluster. CoreDNS's own main links every plugin it ships
// (cloud DNS backends among them); this one links these and is built like its `plugin.cfg`
// builds, by importing the plugins next to coremain. The order in which they handle a query is
// CoreDNS's own (core/dnsserver's Directives); a Corefile can name only the plugins imported here.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
