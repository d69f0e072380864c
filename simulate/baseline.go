package simulate

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"monitor/model"
)

// Baseline is the seed's original design, kept to measure monitor against: an HTTP
// server that validates each report like the API does and writes it with one INSERT
// into tb_status before answering, over a pool of 64 connections.
type Baseline struct {
	db      *sql.DB
	insert  *sql.Stmt
	maxBody int64
}

// baselineConns is the seed's connection pool size.
const baselineConns = 64

// NewBaseline prepares the INSERT on db, whose tb_status must exist.
func NewBaseline(ctx context.Context, db *sql.DB) (*Baseline, error) {
	stmt, err := db.PrepareContext(ctx, `INSERT INTO tb_status
		(sn,posno,city,tyid,unum1,unum2,ndate,ntime,amount,count,line,stime,ctime,tenant,accepted_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON DUPLICATE KEY UPDATE id=id`)
	if err != nil {
		return nil, fmt.Errorf("prepare insert: %w", err)
	}
	return &Baseline{db: db, insert: stmt, maxBody: 64 << 10}, nil
}

// Close releases the prepared statement.
func (b *Baseline) Close() error {
	if err := b.insert.Close(); err != nil {
		return fmt.Errorf("close insert statement: %w", err)
	}
	return nil
}

// ServeHTTP answers POST /open/statusUpload.
func (b *Baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/open/statusUpload" {
		reply(w, http.StatusNotFound, `{"code":404,"msg":"not found"}`)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.maxBody))
	if err != nil {
		reply(w, http.StatusRequestEntityTooLarge, `{"code":413,"msg":"body: over the limit"}`)
		return
	}
	rep, err := model.ParseReport(body)
	if err != nil {
		reply(w, http.StatusBadRequest, fmt.Sprintf(`{"code":400,"msg":%q}`, err.Error()))
		return
	}
	_, err = b.insert.ExecContext(r.Context(), rep.SN, rep.Pos, rep.City, rep.Type, rep.Unum1, rep.Unum2,
		rep.NDate, rep.NTime, rep.Amount, rep.Count, rep.Line, rep.STime, rep.CTime, rep.Tenant,
		time.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		reply(w, http.StatusServiceUnavailable, `{"code":503,"msg":"database unavailable"}`)
		return
	}
	reply(w, http.StatusOK, `{"code":0,"msg":"ok","cmd":0,"cmdId":0}`)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A client that went away cannot be told anything.
	if _, err := io.WriteString(w, body); err != nil {
		return
	}
}

// runBaseline parses the flags of "monitor simulate baseline" and serves until ctx is done.
func runBaseline(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("monitor simulate baseline", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", ":8899", "listen address")
	dsn := fs.String("dsn", "", "go-sql-driver DSN of the database (required); tb_status is created when missing")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *dsn == "" {
		return errors.New("simulate baseline: --dsn is required")
	}
	db, err := openBaselineDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close database: %w", cerr))
		}
	}()
	b, err := NewBaseline(ctx, db)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return errors.Join(fmt.Errorf("listen %s: %w", *addr, err), b.Close())
	}
	fmt.Fprintf(out, "baseline listening on %s: POST /open/statusUpload, one INSERT per request\n", ln.Addr())
	return errors.Join(serve(ctx, ln, b, "baseline"), b.Close())
}

// serve serves h on ln until ctx is done, then shuts the server down within 10 s.
func serve(ctx context.Context, ln net.Listener, h http.Handler, name string) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("%s server: %w", name, err)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	return nil
}

// openBaselineDB opens dsn with the seed's pool of 64 connections and creates tb_status.
func openBaselineDB(ctx context.Context, dsn string) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	mc.ParseTime = true
	mc.Loc = time.UTC
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(baselineConns)
	db.SetMaxIdleConns(baselineConns)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return nil, errors.Join(fmt.Errorf("database: %w", err), db.Close())
	}
	gdb, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: db}), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open database: %w", err), db.Close())
	}
	if err := model.Migrate(gdb, model.MigrateOptions{}); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}
