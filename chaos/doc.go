// Package chaos is the fault-injection suite: its tests start their own Redis and
// MariaDB in temporary folders on free ports, run monitor's api and worker roles as
// separate processes of the real binary, drive them with the simulator and kill, stop
// or fill the servers while reports flow. Each scenario then checks that every report
// acknowledged with a 200 is in tb_status exactly once. `make chaos` runs every scenario
// at full size; `make test` runs the ones that fit CI's time at a smaller one.
package chaos
