using System;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Authentication;
using System.Xml;

namespace CSFMSEJournalInterface
{
    /// <summary>How one HTTP attempt ended.</summary>
    internal enum AttemptOutcome
    {
        /// <summary>The service answered with the operation's response.</summary>
        Answered,

        /// <summary>The gateway answered with a SOAP fault.</summary>
        Fault,

        /// <summary>No connection could be made: the request surely never left.</summary>
        NotConnected,

        /// <summary>The connection was lost or timed out once the request may have been sent.</summary>
        Lost,

        /// <summary>An HTTP 5xx answer that is not the gateway's fault (an ingress or proxy).</summary>
        ServerError,

        /// <summary>The TLS connection could not be set up.</summary>
        TlsFailed,

        /// <summary>An answer that is not the E-Journal service's.</summary>
        Unexpected,
    }

    /// <summary>What one attempt produced.</summary>
    internal sealed class Attempt
    {
        internal AttemptOutcome Outcome;

        /// <summary>The body element of the answer (the operation's response), when answered.</summary>
        internal XmlElement Response;

        /// <summary>The gateway's fault, when it sent one.</summary>
        internal GatewayFault Fault;

        /// <summary>HTTP status of the answer, 0 when none came.</summary>
        internal int HttpStatus;

        /// <summary>The X-Request-Id header of the answer, if any.</summary>
        internal string RequestId;

        /// <summary>What went wrong, in a few words, for the exception's message.</summary>
        internal string Problem;

        /// <summary>The exception behind a failure, if any.</summary>
        internal Exception Error;
    }

    /// <summary>
    /// Sends one SOAP 1.1 request with <see cref="HttpWebRequest"/> and classifies the outcome.
    /// It never retries: <see cref="FmsGeneralLedgerProcessor"/> decides that.
    /// </summary>
    internal static class SoapTransport
    {
        /// <summary>The most the library reads of an answer (the E-Journal's are small).</summary>
        private const int MaxAnswerBytes = 64 * 1024 * 1024;

        /// <summary>TLS 1.2 in <see cref="SecurityProtocolType"/>, which .NET 4.5 knows as Tls12.</summary>
        private const int Tls12 = 3072;

        internal static readonly string UserAgent = BuildUserAgent();

        private static string BuildUserAgent()
        {
            Assembly assembly = typeof(SoapTransport).Assembly;
            var informational = (AssemblyInformationalVersionAttribute)Attribute.GetCustomAttribute(
                assembly, typeof(AssemblyInformationalVersionAttribute));
            string version = informational != null
                ? informational.InformationalVersion
                : assembly.GetName().Version.ToString();
            return "CSFMSEJournalInterface/" + version + " (fng-gateway E-Journal client; CLR "
                + Environment.Version + ")";
        }

        /// <summary>
        /// Makes sure TLS 1.2 may be used, adding it to the protocols already allowed and
        /// removing none. .NET Framework 4.5 and 4.6 allow only TLS 1.0 and 1.1 by default;
        /// from 4.7 the default is SystemDefault (0), which leaves the choice (TLS 1.3
        /// included, where the system has it) to the operating system, and is left alone.
        /// TLS 1.3 is not added to a list an application set itself: some Windows versions
        /// fail handshakes when it is asked for explicitly.
        /// </summary>
        internal static void EnableModernTls()
        {
            int current = (int)ServicePointManager.SecurityProtocol;
            if (current != 0 && (current & Tls12) == 0)
            {
                ServicePointManager.SecurityProtocol = (SecurityProtocolType)(current | Tls12);
            }
        }

        /// <summary>
        /// Sends <paramref name="body"/> once and says how it went; <paramref name="keepAlive"/>
        /// false closes the connection after the call.
        /// </summary>
        internal static Attempt Send(
            Uri service,
            string action,
            byte[] body,
            string requestId,
            TimeSpan timeout,
            IWebProxy proxy,
            bool keepAlive)
        {
            if (service.Scheme == Uri.UriSchemeHttps)
            {
                EnableModernTls();
            }
            var request = (HttpWebRequest)WebRequest.Create(service);
            request.Method = "POST";
            request.ContentType = "text/xml; charset=utf-8";
            request.Accept = "text/xml";
            request.UserAgent = UserAgent;
            request.Headers["SOAPAction"] = action;
            request.Headers["X-Request-Id"] = requestId;
            request.AllowAutoRedirect = false;
            request.AutomaticDecompression = DecompressionMethods.GZip | DecompressionMethods.Deflate;
            request.Timeout = (int)timeout.TotalMilliseconds;
            request.ReadWriteTimeout = (int)timeout.TotalMilliseconds;
            request.Proxy = proxy;
            request.ContentLength = body.Length;
            // The framework may quietly send a request again when a reused connection fails;
            // a call that must not arrive twice goes on a connection of its own.
            request.KeepAlive = keepAlive;

            HttpWebResponse response;
            try
            {
                using (Stream stream = request.GetRequestStream())
                {
                    stream.Write(body, 0, body.Length);
                }
                response = (HttpWebResponse)request.GetResponse();
            }
            catch (WebException exception)
            {
                response = exception.Response as HttpWebResponse;
                if (exception.Status != WebExceptionStatus.ProtocolError || response == null)
                {
                    return Failed(exception, exception.Status);
                }
            }
            catch (IOException exception)
            {
                return Failed(exception, WebExceptionStatus.SendFailure);
            }
            catch (SocketException exception)
            {
                return Failed(exception, WebExceptionStatus.SendFailure);
            }

            using (response)
            {
                return Read(response);
            }
        }

        private static Attempt Read(HttpWebResponse response)
        {
            var attempt = new Attempt();
            attempt.HttpStatus = (int)response.StatusCode;
            attempt.RequestId = response.Headers["X-Request-Id"];
            byte[] data;
            try
            {
                data = ReadAll(response.GetResponseStream());
            }
            catch (IOException exception)
            {
                return Lost(attempt, "the connection was lost while the answer was read", exception);
            }
            catch (WebException exception)
            {
                return Lost(attempt, "the connection was lost while the answer was read", exception);
            }
            if (data == null)
            {
                attempt.Outcome = AttemptOutcome.Unexpected;
                attempt.Problem = "the answer is larger than " + MaxAnswerBytes + " bytes";
                return attempt;
            }

            XmlElement element = SoapMessages.BodyElement(data);
            if (element != null && SoapMessages.IsFault(element))
            {
                GatewayFault fault = SoapMessages.ReadFault(element);
                if (fault != null)
                {
                    attempt.Outcome = AttemptOutcome.Fault;
                    attempt.Fault = fault;
                    return attempt;
                }
            }
            else if (element != null && attempt.HttpStatus == 200)
            {
                attempt.Outcome = AttemptOutcome.Answered;
                attempt.Response = element;
                return attempt;
            }

            string what = "HTTP " + attempt.HttpStatus + " " + response.StatusDescription;
            if (attempt.HttpStatus >= 500)
            {
                attempt.Outcome = AttemptOutcome.ServerError;
                attempt.Problem = "the server answered " + what + " without the gateway's SOAP fault";
            }
            else
            {
                attempt.Outcome = AttemptOutcome.Unexpected;
                attempt.Problem = Unexpected(response, what);
            }
            return attempt;
        }

        private static string Unexpected(HttpWebResponse response, string what)
        {
            int status = (int)response.StatusCode;
            if (status == 407)
            {
                return "the proxy answered " + what + ": it wants credentials, which the Proxy property can carry";
            }
            if (status >= 300 && status < 400)
            {
                string location = response.Headers["Location"];
                return "the address answered " + what
                    + (string.IsNullOrEmpty(location) ? string.Empty : " to " + location)
                    + ", a redirect the library does not follow";
            }
            string type = response.ContentType;
            return "the address answered " + what
                + (string.IsNullOrEmpty(type) ? string.Empty : " (" + type + ")")
                + ", which is not the E-Journal service's answer";
        }

        /// <summary>The whole stream, or null when it is larger than the library reads.</summary>
        private static byte[] ReadAll(Stream stream)
        {
            using (stream)
            using (var buffer = new MemoryStream())
            {
                var chunk = new byte[16384];
                int read;
                while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
                {
                    if (buffer.Length + read > MaxAnswerBytes)
                    {
                        return null;
                    }
                    buffer.Write(chunk, 0, read);
                }
                return buffer.ToArray();
            }
        }

        private static Attempt Failed(Exception exception, WebExceptionStatus status)
        {
            var attempt = new Attempt();
            attempt.Error = exception;
            if (status == WebExceptionStatus.TrustFailure
                || status == WebExceptionStatus.SecureChannelFailure
                || IsTls(exception))
            {
                attempt.Outcome = AttemptOutcome.TlsFailed;
                attempt.Problem = Describe(exception);
                return attempt;
            }
            switch (status)
            {
                case WebExceptionStatus.NameResolutionFailure:
                case WebExceptionStatus.ProxyNameResolutionFailure:
                case WebExceptionStatus.ConnectFailure:
                    attempt.Outcome = AttemptOutcome.NotConnected;
                    attempt.Problem = "no connection could be made: " + Describe(exception);
                    return attempt;
                case WebExceptionStatus.Timeout:
                    return Lost(attempt, "no answer came in time", exception);
                default:
                    return Lost(attempt, "the connection failed: " + Describe(exception), exception);
            }
        }

        private static Attempt Lost(Attempt attempt, string problem, Exception exception)
        {
            attempt.Outcome = AttemptOutcome.Lost;
            attempt.Problem = problem;
            attempt.Error = exception;
            return attempt;
        }

        private static bool IsTls(Exception exception)
        {
            for (Exception e = exception; e != null; e = e.InnerException)
            {
                if (e is AuthenticationException)
                {
                    return true;
                }
            }
            return false;
        }

        /// <summary>The innermost message, which names the cause (refused, reset, …).</summary>
        private static string Describe(Exception exception)
        {
            Exception inner = exception;
            while (inner.InnerException != null)
            {
                inner = inner.InnerException;
            }
            string outer = exception.Message.Trim().TrimEnd('.');
            string message = inner.Message.Trim().TrimEnd('.');
            return inner == exception || outer.Contains(message) ? outer : outer + " (" + message + ")";
        }
    }
}
