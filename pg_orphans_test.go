package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A test binary killed before its TestMain stops the test cluster (a
// -timeout panic, kill -9) leaves PostgreSQL running with nobody to stop
// it. Each cluster's folder names the binary that owns it, and the next
// run stops and removes the clusters whose owner is gone.

// clusterDirPattern names the folders of the test clusters.
const clusterDirPattern = "bulkrestore-pg-*"

// clusterOwnerFile holds, in a cluster's folder, the process id of the test
// binary that owns the cluster.
const clusterOwnerFile = "owner.pid"

// newClusterDir makes a cluster's folder, owned by this process.
func newClusterDir() (string, error) {
	dir, err := os.MkdirTemp("", clusterDirPattern)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, clusterOwnerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// reapOrphanClusters stops and removes every test cluster whose owner is
// no longer alive.
func reapOrphanClusters(bin, asUser string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), clusterDirPattern))
	for _, dir := range dirs {
		if !clusterOrphaned(dir) {
			continue
		}
		c := &pgCluster{bin: bin, dir: dir, asUser: asUser}
		if _, err := os.Stat(filepath.Join(c.data(), "postmaster.pid")); err == nil {
			c.ctl("stop", "-m", "immediate")
		}
		os.RemoveAll(dir)
	}
}

// clusterOrphaned reports whether the owner of the cluster in dir is gone.
// A folder without an owner file (made before owners were written, or
// being made right now) counts as orphaned once it is a minute old.
func clusterOrphaned(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, clusterOwnerFile))
	if err != nil {
		info, statErr := os.Stat(dir)
		return statErr == nil && time.Since(info.ModTime()) > time.Minute
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return err != nil || syscall.Kill(pid, 0) == syscall.ESRCH
}

// TestOrphanedTestClustersAreStoppedAndRemoved starts a second cluster,
// makes its owner a process that has exited, and checks that the reaper
// stops its PostgreSQL and removes its folder, and leaves this run's own
// cluster alone.
func TestOrphanedTestClustersAreStoppedAndRemoved(t *testing.T) {
	own := requirePG(t)
	orphan, err := startPGCluster()
	if err != nil {
		t.Fatal(err)
	}
	orphan.admin.Close()
	t.Cleanup(func() { // should the reaper fail
		orphan.ctl("stop", "-m", "immediate")
		os.RemoveAll(orphan.dir)
	})
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan.dir, clusterOwnerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	postmaster := filepath.Join(orphan.data(), "postmaster.pid")
	if _, err := os.Stat(postmaster); err != nil {
		t.Fatalf("the orphan is not running: %v", err)
	}

	reapOrphanClusters(orphan.bin, orphan.asUser)
	if _, err := os.Stat(orphan.dir); !os.IsNotExist(err) {
		t.Errorf("the orphan's folder is still there (%v)", err)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(orphan.port), time.Second); err == nil {
		conn.Close()
		t.Errorf("the orphan's PostgreSQL still answers on port %d", orphan.port)
	}
	if _, err := os.Stat(filepath.Join(own.dir, clusterOwnerFile)); err != nil {
		t.Errorf("this run's own cluster was touched: %v", err)
	}
	if err := own.admin.Ping(); err != nil {
		t.Errorf("this run's own cluster stopped answering: %v", err)
	}
}
