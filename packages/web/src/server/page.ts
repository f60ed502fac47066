/** The web chat's one HTML page and its stylesheet (no inline script or style: the CSP forbids both). */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<title>Parley</title>
</head>
<body>
<main id="root"><p class="loading">Loading…</p></main>
<script type="module" src="/app.js"></script>
</body>
</html>
`;

export const PAGE_CSS = `
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: #eef1f5; color: #1c2430; }
button { font: inherit; padding: 6px 12px; border: 1px solid #3866c8; background: #3866c8; color: #fff; border-radius: 6px; cursor: pointer; }
button.plain { background: #fff; color: #3866c8; }
input, textarea, select { font: inherit; padding: 6px 8px; border: 1px solid #b8c2d0; border-radius: 6px; }
textarea { width: 100%; font-family: ui-monospace, monospace; font-size: 12px; }
.loading, .welcome { max-width: 520px; margin: 80px auto; background: #fff; padding: 24px; border-radius: 10px; }
.welcome h1 { margin-top: 0; }
.welcome .row { display: flex; gap: 8px; margin: 12px 0; }
.shell { display: grid; grid-template-columns: 280px 1fr; grid-template-rows: auto 1fr; height: 100vh; }
header { grid-column: 1 / 3; display: flex; align-items: center; gap: 8px; padding: 8px 12px; background: #1c2430; color: #fff; }
header .me { font-family: ui-monospace, monospace; font-size: 11px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 420px; }
header .spacer { flex: 1; }
header .conn { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #5a6472; }
header .conn.open, header .conn.drained { background: #2e8b57; }
header .conn.closed { background: #b03a2e; }
aside { background: #fff; border-right: 1px solid #d5dbe3; overflow-y: auto; }
aside .conv { padding: 10px 12px; border-bottom: 1px solid #eef1f5; cursor: pointer; display: flex; justify-content: space-between; }
aside .conv.active { background: #dde7fb; }
aside .conv .badge { background: #3866c8; color: #fff; border-radius: 10px; padding: 0 7px; font-size: 12px; }
aside .empty { padding: 12px; color: #6b7685; }
section.chat { display: flex; flex-direction: column; min-height: 0; }
section.chat .bar { display: flex; align-items: center; gap: 8px; padding: 8px 12px; background: #fff; border-bottom: 1px solid #d5dbe3; }
section.chat .bar .title { font-weight: 600; flex: 1; }
section.chat .messages { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 6px; }
section.chat .none { margin: auto; color: #6b7685; }
.msg { max-width: 70%; padding: 6px 10px; border-radius: 10px; background: #fff; align-self: flex-start; }
.msg.out { align-self: flex-end; background: #d9f2dc; }
.msg .who { font-size: 11px; color: #3866c8; }
.msg .meta { font-size: 11px; color: #6b7685; text-align: right; }
.msg img, .msg video { max-width: 320px; max-height: 240px; display: block; border-radius: 6px; }
.composer { display: flex; gap: 8px; padding: 8px 12px; background: #fff; border-top: 1px solid #d5dbe3; }
.composer input[type=text] { flex: 1; }
.composer label.file { border: 1px solid #3866c8; color: #3866c8; border-radius: 6px; padding: 6px 10px; cursor: pointer; }
.composer input[type=file] { display: none; }
.overlay { position: fixed; inset: 0; background: rgba(20, 28, 40, 0.45); display: flex; align-items: center; justify-content: center; }
.dialog { background: #fff; border-radius: 10px; padding: 20px; width: 480px; max-width: 95vw; display: flex; flex-direction: column; gap: 10px; }
.dialog h2 { margin: 0; font-size: 18px; }
.dialog .actions { display: flex; gap: 8px; justify-content: flex-end; }
.digits { font-family: ui-monospace, monospace; font-size: 20px; display: grid; grid-template-columns: repeat(4, auto); gap: 6px 16px; justify-content: center; }
.error { color: #b03a2e; min-height: 1em; }
.msg .meta .report { font-size: 11px; padding: 0; color: #8a5a00; }
.dialog .report-preview { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; max-height: 40vh; overflow: auto; font-size: 13px; }
.dialog .report-preview .small { font-size: 11px; color: #6b7685; }
.dialog label.context { display: block; font-size: 13px; }
.typing { font-size: 12px; color: #6b7685; padding: 0 12px; min-height: 1.4em; }
`;
