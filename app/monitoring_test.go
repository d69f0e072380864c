package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"monitor/internal/testenv"
	"monitor/model"
	"monitor/task"
)

// TestAsynqmonShowsPayloads runs `monitor api` and reads a queued report through its
// asynqmon: the payload is shown decoded, not as "non-printable bytes".
func TestAsynqmonShowsPayloads(t *testing.T) {
	db := testenv.NewDB(t)
	if db.DSN == "" {
		testenv.Missing(t, "monitor api needs a MySQL database")
		return
	}
	rdb := testenv.NewRedis(t)
	client := asynq.NewClient(rdb.Opt())
	defer client.Close()
	report := &model.Report{SN: "WIRE0001", NDate: "2021-08-07", NTime: "18:30:30", City: "0371", AcceptedAt: time.Now().UTC()}
	if _, err := client.Enqueue(asynq.NewTask(task.TypeStatusReport, task.AppendReport(nil, report)), asynq.Queue(task.QueueIngest)); err != nil {
		t.Fatal(err)
	}

	addr := testenv.FreeAddr(t)
	const token = "monitoring-test-operator-token"
	env := []string{"MONITOR_MYSQL_DSN=" + db.DSN, "MONITOR_REDIS_ADDR=" + rdb.Addr, "MONITOR_REDIS_DB=" + strconv.Itoa(rdb.DB),
		"MONITOR_OPERATOR_TOKEN=" + token, "MONITOR_HTTP_ADDR=" + addr}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testenv.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"api"}, env, &stdout, &stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, stderr.String())
		}
	}()
	testenv.WaitFor(t, 20*time.Second, "monitor api to answer /healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		return resp.Body.Close() == nil && resp.StatusCode == http.StatusOK
	})

	resp := operatorGet(t, "http://"+addr+"/monitoring/api/queues/"+task.QueueIngest+"/pending_tasks", token)
	defer resp.Body.Close()
	var list struct {
		Tasks []struct {
			Type    string `json:"type"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pending tasks: %d %v", resp.StatusCode, err)
	}
	if len(list.Tasks) != 1 {
		t.Fatalf("asynqmon lists %d pending tasks, want the one report", len(list.Tasks))
	}
	if p := list.Tasks[0].Payload; !strings.Contains(p, `"sn": "WIRE0001"`) || !strings.Contains(p, `"ndate": "2021-08-07"`) {
		t.Fatalf("asynqmon shows the report's payload as %q", p)
	}
}
