package kube

import (
	"sync"
	"time"
)

// hostIPTTL is how long the node's address is kept: reading it
// (readHostIP) dumps every link and address of the host over netlink,
// which on a host with many containers was most of what a supervisor's
// idle relist allocated (about 200 KB a round). kubelet too reads its
// node addresses periodically, not for every pod status.
const hostIPTTL = time.Minute

var hostIPCache struct {
	sync.Mutex
	ip string
	at time.Time
}

// hostIP is the node's address (the pod's hostIP), read at most once
// per hostIPTTL.
func hostIP() string {
	c := &hostIPCache
	c.Lock()
	defer c.Unlock()
	if c.ip == "" || time.Since(c.at) > hostIPTTL {
		c.ip, c.at = readHostIP(), time.Now()
	}
	return c.ip
}
