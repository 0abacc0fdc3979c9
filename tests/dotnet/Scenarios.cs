// What the tests ask of CSFMSEJournalInterface.dll, one scenario per run:
//
//   mono Scenarios.exe COMMAND [key=value ...]
//
// Connection: server, database, username, password; retries: attempts, delay, maxdelay,
// timeout, calltimeout (milliseconds); connectionlimit; thumbprint=SHA1 trusts that
// certificate (and no other). Each step prints one JSON object on a line of its own.
//
//   banks [system=TPPCS]            GetBanks
//   post file=PATH [as=document|element|xpath|navigator] [invalid=1]
//                                   PostJournals with the journal loaded as that kind of object
//                                   (invalid=1: the first Txn's description then holds U+0001)
//   audit message=TEXT              PostAuditMessage
//   parallel calls=N                N GetBanks at once, on N threads sharing one processor
//   tls thumbprint=SHA1 [system=]   as a .NET 4.5 application: only TLS 1.0 allowed, a
//                                   certificate trusted by the application; then GetBanks
//   ctor                            the constructor, the properties and the exception type

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Runtime.Serialization.Formatters.Binary;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Xml;
using System.Xml.XPath;
using CSFMSEJournalInterface;

public static class Scenarios
{
    private static Dictionary<string, string> options = new Dictionary<string, string>();

    public static int Main(string[] args)
    {
        for (int i = 1; i < args.Length; i++)
        {
            int equals = args[i].IndexOf('=');
            options[args[i].Substring(0, equals)] = args[i].Substring(equals + 1);
        }
        switch (args[0])
        {
            case "banks":
                Banks(Processor());
                return 0;
            case "post":
                Post(Processor());
                return 0;
            case "audit":
                Audit(Processor());
                return 0;
            case "parallel":
                Parallel(Processor());
                return 0;
            case "tls":
                Tls();
                return 0;
            case "ctor":
                Constructor();
                return 0;
            default:
                Console.Error.WriteLine("unknown scenario " + args[0]);
                return 64;
        }
    }

    private static string Option(string name, string fallback)
    {
        string value;
        return options.TryGetValue(name, out value) ? value : fallback;
    }

    private static FmsGeneralLedgerProcessor Processor()
    {
        var processor = new FmsGeneralLedgerProcessor(
            Option("server", null), Option("database", null), Option("username", null), Option("password", null));
        if (options.ContainsKey("attempts"))
        {
            processor.MaxAttempts = int.Parse(Option("attempts", null));
        }
        if (options.ContainsKey("delay"))
        {
            processor.RetryDelay = TimeSpan.FromMilliseconds(int.Parse(Option("delay", null)));
        }
        if (options.ContainsKey("maxdelay"))
        {
            processor.MaxRetryDelay = TimeSpan.FromMilliseconds(int.Parse(Option("maxdelay", null)));
        }
        if (options.ContainsKey("timeout"))
        {
            processor.Timeout = TimeSpan.FromMilliseconds(int.Parse(Option("timeout", null)));
        }
        if (options.ContainsKey("calltimeout"))
        {
            processor.CallTimeout = TimeSpan.FromMilliseconds(int.Parse(Option("calltimeout", null)));
        }
        if (options.ContainsKey("connectionlimit"))
        {
            processor.ConnectionLimit = int.Parse(Option("connectionlimit", null));
        }
        if (options.ContainsKey("thumbprint"))
        {
            string thumbprint = Option("thumbprint", null);
            ServicePointManager.ServerCertificateValidationCallback =
                delegate(object sender, X509Certificate certificate, X509Chain chain, SslPolicyErrors errors)
                {
                    return certificate != null && certificate.GetCertHashString() == thumbprint;
                };
        }
        return processor;
    }

    private static void Banks(FmsGeneralLedgerProcessor processor)
    {
        var line = new Json("banks");
        DateTime started = DateTime.UtcNow;
        try
        {
            bool isSuccess;
            IXPathNavigable result = processor.GetBanks(Option("system", "TPPCS"), out isSuccess);
            var document = result as XmlDocument;
            line.Add("isSuccess", isSuccess);
            line.Add("type", result.GetType().FullName);
            line.Add("xml", document.OuterXml);
            var banks = new List<string>();
            foreach (XmlElement bank in document.SelectNodes("/Request/Banks/Bank"))
            {
                banks.Add(bank.GetAttribute("externalReference") + ":" + bank.GetAttribute("lastOrderRowVersion")
                    + ":" + bank.GetAttribute("lastSettlementRowVersion"));
            }
            line.Add("banks", string.Join(",", banks.ToArray()));
        }
        catch (GatewayException e)
        {
            line.Add(e);
        }
        line.Add("elapsed_ms", (int)(DateTime.UtcNow - started).TotalMilliseconds);
        line.Print();
    }

    private static void Post(FmsGeneralLedgerProcessor processor)
    {
        var line = new Json("post");
        DateTime started = DateTime.UtcNow;
        string kind = Option("as", "document");
        IXPathNavigable journal;
        if (kind == "xpath")
        {
            journal = new XPathDocument(Option("file", null));
        }
        else if (kind == "navigator")
        {
            journal = new XPathDocument(Option("file", null)).CreateNavigator();
        }
        else
        {
            var document = new XmlDocument();
            document.Load(Option("file", null));
            if (Option("invalid", null) == "1")
            {
                var txn = (XmlElement)document.SelectSingleNode("//Txn");
                txn.SetAttribute("description", "bad \u0001 character");
            }
            journal = kind == "element" ? (IXPathNavigable)document.DocumentElement : document;
        }
        try
        {
            var result = processor.PostJournals(journal) as XmlDocument;
            line.Add("type", result.GetType().FullName);
            line.Add("xml", result.OuterXml);
            line.Add("isSuccess", result.DocumentElement.GetAttribute("isSuccess"));
            line.Add("replayed", result.DocumentElement.GetAttribute("replayed"));
            var codes = new List<string>();
            foreach (XmlElement error in result.SelectNodes("/JournalResult/Errors/Error"))
            {
                codes.Add(error.GetAttribute("code"));
            }
            line.Add("errors", string.Join(",", codes.ToArray()));
        }
        catch (GatewayException e)
        {
            line.Add(e);
        }
        line.Add("elapsed_ms", (int)(DateTime.UtcNow - started).TotalMilliseconds);
        line.Print();
    }

    private static void Audit(FmsGeneralLedgerProcessor processor)
    {
        var line = new Json("audit");
        try
        {
            var result = processor.PostAuditMessage(Option("message", null)) as XmlDocument;
            line.Add("xml", result.OuterXml);
            line.Add("isSuccess", result.DocumentElement.GetAttribute("isSuccess"));
        }
        catch (GatewayException e)
        {
            line.Add(e);
        }
        line.Print();
    }

    private static void Parallel(FmsGeneralLedgerProcessor processor)
    {
        int calls = int.Parse(Option("calls", "6"));
        var results = new string[calls];
        var threads = new Thread[calls];
        DateTime started = DateTime.UtcNow;
        for (int i = 0; i < calls; i++)
        {
            int index = i;
            threads[i] = new Thread(delegate()
            {
                try
                {
                    bool isSuccess;
                    processor.GetBanks(Option("system", "TPPCS"), out isSuccess);
                    results[index] = isSuccess ? "ok" : "refused";
                }
                catch (GatewayException e)
                {
                    results[index] = e.Code;
                }
            });
            threads[i].Start();
        }
        foreach (Thread thread in threads)
        {
            thread.Join();
        }
        var line = new Json("parallel");
        line.Add("results", string.Join(",", results));
        line.Add("elapsed_ms", (int)(DateTime.UtcNow - started).TotalMilliseconds);
        line.Print();
    }

    private static void Tls()
    {
        // What .NET Framework 4.5 and 4.6 allow by default: TLS 1.0 only (with SSL 3 before
        // 4.6). The application trusts the test's certificate itself, as it would a private CA.
        ServicePointManager.SecurityProtocol = SecurityProtocolType.Tls;
        string thumbprint = Option("thumbprint", null);
        ServicePointManager.ServerCertificateValidationCallback =
            delegate(object sender, X509Certificate certificate, X509Chain chain, SslPolicyErrors errors)
            {
                return certificate != null && certificate.GetCertHashString() == thumbprint;
            };

        // Without the library: a plain request as the application makes it.
        var raw = new Json("raw");
        raw.Add("protocols", (int)ServicePointManager.SecurityProtocol);
        try
        {
            var request = (HttpWebRequest)WebRequest.Create(Option("server", null).TrimEnd('/') + "/soap/ejournal?wsdl");
            request.Timeout = 10000;
            using (var response = (HttpWebResponse)request.GetResponse())
            {
                raw.Add("status", (int)response.StatusCode);
            }
        }
        catch (WebException e)
        {
            raw.Add("error", e.Status.ToString());
            raw.Add("message", e.Message);
        }
        raw.Print();

        Banks(Processor());
        var after = new Json("after");
        after.Add("protocols", (int)ServicePointManager.SecurityProtocol);
        after.Print();

        // From .NET 4.7 the default is SystemDefault (0): the operating system chooses, and the
        // library leaves it so.
        ServicePointManager.SecurityProtocol = (SecurityProtocolType)0;
        Banks(Processor());
        var system = new Json("system-default");
        system.Add("protocols", (int)ServicePointManager.SecurityProtocol);
        system.Print();
    }

    /// <summary>Records where the library sends its requests, and refuses them (nothing listens
    /// on port 1), so that the address can be seen without a server.</summary>
    private sealed class RecordingProxy : IWebProxy
    {
        public Uri Destination;

        public ICredentials Credentials { get; set; }

        public Uri GetProxy(Uri destination)
        {
            Destination = destination;
            return new Uri("http://127.0.0.1:1/");
        }

        public bool IsBypassed(Uri host)
        {
            return false;
        }
    }

    private static void Constructor()
    {
        string[] servers =
        {
            "gateway.example.org",
            "gateway.example.org:8443",
            "GATEWAY.example.org/",
            "https://gateway.example.org/fng/",
            "https://gateway.example.org/fng/soap/ejournal?wsdl",
            "http://127.0.0.1:8080/soap/ejournal/",
            "http://[::1]:8080",
            "SQL01\\FMS",
            ".\\SQLEXPRESS",
            "SQL01,1433",
            "tcp:SQL01,1433",
            "Data Source=SQL01;Initial Catalog=FMS",
            "ftp://gateway.example.org",
            "https://gateway.example.org/?x=1",
            "",
            "Server=sql01;Database=FMS;User Id=sa;Password=S3cret!;",
            "https://user:S3cret@gateway.example.org",
            "user:S3cret@gateway.example.org",
            "https://gateway.example.org/#S3cret",
            "https://gateway.example.org/?password=S3cret",
            "S3cret:password",
            "http:/127.0.0.1:8080",
            "https//gateway.example.org",
        };
        foreach (string server in servers)
        {
            var line = new Json("server");
            line.Add("server", server);
            try
            {
                var processor = new FmsGeneralLedgerProcessor(server, "key", "user", "password");
                var proxy = new RecordingProxy();
                processor.Proxy = proxy;
                processor.MaxAttempts = 1;
                try
                {
                    bool isSuccess;
                    processor.GetBanks("TPPCS", out isSuccess);
                }
                catch (GatewayException e)
                {
                    line.Add("code", e.Code);
                }
                line.Add("url", proxy.Destination == null ? null : proxy.Destination.AbsoluteUri);
            }
            catch (ArgumentException e)
            {
                line.Add("error", e.GetType().Name);
                line.Add("param", e.ParamName);
                line.Add("message", e.Message);
            }
            line.Print();
        }

        string[][] nulls =
        {
            new string[] { null, "key", "user", "password" },
            new string[] { "gateway.example.org", null, "user", "password" },
            new string[] { "gateway.example.org", "key", null, "password" },
            new string[] { "gateway.example.org", "key", "user", null },
        };
        foreach (string[] arguments in nulls)
        {
            var line = new Json("null");
            try
            {
                new FmsGeneralLedgerProcessor(arguments[0], arguments[1], arguments[2], arguments[3]);
            }
            catch (ArgumentNullException e)
            {
                line.Add("error", e.GetType().Name);
                line.Add("param", e.ParamName);
            }
            line.Print();
        }

        var defaults = new FmsGeneralLedgerProcessor("gateway.example.org", "key", "user", "password");
        var settings = new Json("defaults");
        settings.Add("timeout_ms", (int)defaults.Timeout.TotalMilliseconds);
        settings.Add("max_attempts", defaults.MaxAttempts);
        settings.Add("retry_delay_ms", (int)defaults.RetryDelay.TotalMilliseconds);
        settings.Add("max_retry_delay_ms", (int)defaults.MaxRetryDelay.TotalMilliseconds);
        settings.Add("call_timeout_ms", (int)defaults.CallTimeout.TotalMilliseconds);
        settings.Add("connection_limit", defaults.ConnectionLimit);
        settings.Add("proxy", defaults.Proxy != null);
        settings.Print();

        var refused = new Json("setters");
        refused.Add("timeout_zero", Refuses(delegate { defaults.Timeout = TimeSpan.Zero; }));
        refused.Add("timeout_huge", Refuses(delegate { defaults.Timeout = TimeSpan.FromDays(30); }));
        refused.Add("call_timeout_zero", Refuses(delegate { defaults.CallTimeout = TimeSpan.Zero; }));
        refused.Add("call_timeout_huge", Refuses(delegate { defaults.CallTimeout = TimeSpan.FromDays(30); }));
        refused.Add("connection_limit_zero", Refuses(delegate { defaults.ConnectionLimit = 0; }));
        refused.Add("connection_limit_one", Refuses(delegate { defaults.ConnectionLimit = 1; }));
        refused.Add("attempts_zero", Refuses(delegate { defaults.MaxAttempts = 0; }));
        refused.Add("delay_negative", Refuses(delegate { defaults.RetryDelay = TimeSpan.FromSeconds(-1); }));
        refused.Add("max_delay_negative", Refuses(delegate { defaults.MaxRetryDelay = TimeSpan.FromSeconds(-1); }));
        refused.Add("max_delay_huge", Refuses(delegate { defaults.MaxRetryDelay = TimeSpan.FromDays(2); }));
        refused.Add("attempts_one", Refuses(delegate { defaults.MaxAttempts = 1; }));
        refused.Add("delay_zero", Refuses(delegate { defaults.RetryDelay = TimeSpan.Zero; }));
        refused.Add("null_journal", Refuses(delegate { defaults.PostJournals(null); }));
        refused.Add("null_message", Refuses(delegate { defaults.PostAuditMessage(null); }));
        refused.Add("empty_journal", Refuses(delegate { defaults.PostJournals(new XmlDocument()); }));
        refused.Print();

        // Proxy credentials only when asked for, as HttpWebRequest gives the system proxy.
        var credentials = new Json("proxy");
        credentials.Add("default_credentials", defaults.Proxy.Credentials != null);
        defaults.Proxy.Credentials = CredentialCache.DefaultCredentials;
        credentials.Add("opted_in", defaults.Proxy.Credentials == CredentialCache.DefaultCredentials);
        credentials.Print();

        var original = new GatewayException("the message", "OUTCOME_UNKNOWN", "abc123", "OutcomeUnknownException", 500, 3, null);
        var formatter = new BinaryFormatter();
        var stream = new MemoryStream();
        formatter.Serialize(stream, original);
        stream.Position = 0;
        var copy = (GatewayException)formatter.Deserialize(stream);
        var serialized = new Json("serialized");
        serialized.Add("message", copy.Message);
        serialized.Add("code", copy.Code);
        serialized.Add("requestId", copy.RequestId);
        serialized.Add("exceptionType", copy.ExceptionType);
        serialized.Add("httpStatus", copy.HttpStatus);
        serialized.Add("attempts", copy.Attempts);
        serialized.Print();
    }

    private static string Refuses(Action action)
    {
        try
        {
            action();
            return null;
        }
        catch (Exception e)
        {
            return e.GetType().Name;
        }
    }

    /// <summary>One line of JSON output.</summary>
    private sealed class Json
    {
        private readonly StringBuilder text = new StringBuilder();

        public Json(string step)
        {
            Add("step", step);
        }

        public void Add(string name, string value)
        {
            text.Append(text.Length == 0 ? "{" : ",");
            text.Append(Quote(name)).Append(':').Append(value == null ? "null" : Quote(value));
        }

        public void Add(string name, int value)
        {
            text.Append(text.Length == 0 ? "{" : ",");
            text.Append(Quote(name)).Append(':').Append(value.ToString(CultureInfo.InvariantCulture));
        }

        public void Add(string name, bool value)
        {
            text.Append(text.Length == 0 ? "{" : ",");
            text.Append(Quote(name)).Append(':').Append(value ? "true" : "false");
        }

        public void Add(GatewayException e)
        {
            Add("exception", e.GetType().FullName);
            Add("code", e.Code);
            Add("message", e.Message);
            Add("requestId", e.RequestId);
            Add("exceptionType", e.ExceptionType);
            Add("httpStatus", e.HttpStatus);
            Add("attempts", e.Attempts);
        }

        public void Print()
        {
            Console.WriteLine(text.ToString() + "}");
        }

        private static string Quote(string value)
        {
            var quoted = new StringBuilder("\"");
            foreach (char c in value)
            {
                if (c == '"' || c == '\\')
                {
                    quoted.Append('\\').Append(c);
                }
                else if (c < ' ')
                {
                    quoted.Append("\\u").Append(((int)c).ToString("x4"));
                }
                else
                {
                    quoted.Append(c);
                }
            }
            return quoted.Append('"').ToString();
        }
    }
}
