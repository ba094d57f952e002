// OpenAI-compatible HTTP server (ASP.NET Core minimal API). Endpoints arrive with the server issue;
// for now it answers a health check so the project builds and can be started.
var builder = WebApplication.CreateSlimBuilder(args);
var app = builder.Build();
app.MapGet("/health", () => Results.Text("ok"));
app.Run();
