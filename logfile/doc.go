// Package logfile provides File, an append-only log file that can be
// reopened at the same path after logrotate has moved the old one away.
//
// A File is an [io.Writer] for a [log/slog] handler. Every Write is one
// write(2) to a file opened with O_APPEND, made under one mutex, so lines
// from concurrent loggers never interleave, and lines from another process
// appending to the same file (the old and the new wssgate during a binary
// upgrade) land whole as well.
//
// Rotation follows logrotate's default create mode: logrotate renames
// access.log to access.log.1 and the program is told, by SIGUSR1 in
// wssgate, to call [File.Reopen]. Writes made before Reopen returns go to
// the renamed file; writes after it go to a fresh file at the path. No
// line is lost or split across the two. copytruncate is not needed and
// loses lines; don't use it.
package logfile
