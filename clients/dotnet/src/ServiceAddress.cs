using System;

namespace CSFMSEJournalInterface
{
    /// <summary>
    /// Turns the constructor's <c>server</c> into the E-Journal service's URL:
    /// <c>https://host[:port][/prefix]</c> becomes <c>…/soap/ejournal</c>.
    /// </summary>
    internal static class ServiceAddress
    {
        internal const string ServicePath = "/soap/ejournal";

        private const string Expected =
            "server must be the gateway's address, https://host[:port][/prefix] "
            + "(for example https://gateway.example.org); the value given ";

        /// <summary>Whether <paramref name="server"/> (accepted by <see cref="Parse"/>) means
        /// https without saying so: a host name alone.</summary>
        internal static bool HttpsImplied(string server)
        {
            return server.Trim().IndexOf("://", StringComparison.Ordinal) < 0;
        }

        /// <summary>
        /// The service URL for <paramref name="server"/>. A bare host name means https;
        /// <c>http://</c> only when written out. The full service URL, with or without
        /// <c>?wsdl</c>, is accepted too. A refused value is never quoted in the exception: it
        /// may be a connection string or URL carrying a password.
        /// </summary>
        internal static Uri Parse(string server)
        {
            if (server == null)
            {
                throw new ArgumentNullException("server");
            }
            string text = server.Trim();
            if (text.Length == 0)
            {
                throw Refused("is empty");
            }
            // An FMS SQL Server instance (SQL01\FMS) or a connection string is the classic
            // mistake: Uri would quietly turn the backslash into a slash.
            if (text.IndexOf('\\') >= 0)
            {
                throw Refused("contains '\\' like an SQL Server instance name (SERVER\\INSTANCE)");
            }
            if (text.IndexOf(';') >= 0)
            {
                throw Refused("contains ';' like a connection string");
            }
            int equals = text.IndexOf('=');
            int question = text.IndexOf('?');
            if (equals >= 0 && (question < 0 || equals < question))
            {
                // (After a '?' it is a query string, refused below as such.)
                throw Refused("contains '=' like a connection string");
            }
            foreach (char c in text)
            {
                if (char.IsWhiteSpace(c) || char.IsControl(c))
                {
                    throw Refused("contains a space or a control character");
                }
            }
            int separator = text.IndexOf("://", StringComparison.Ordinal);
            if (separator < 0)
            {
                string lower = text.ToLowerInvariant();
                if (lower.StartsWith("http:") || lower.StartsWith("https:")
                    || lower.StartsWith("http/") || lower.StartsWith("https/"))
                {
                    throw Refused("starts with a mistyped scheme: write https:// or http://, colon and two slashes");
                }
                if (text.IndexOf('@') >= 0)
                {
                    throw Refused("carries a user name (and perhaps a password) before '@'; give them as username and password instead");
                }
                if (text.IndexOf(',') >= 0)
                {
                    throw Refused("contains ',' like an SQL Server address (host,port)");
                }
                text = "https://" + text;
            }
            else
            {
                string scheme = text.Substring(0, separator);
                if (!scheme.Equals("https", StringComparison.OrdinalIgnoreCase)
                    && !scheme.Equals("http", StringComparison.OrdinalIgnoreCase))
                {
                    throw Refused("does not start with https:// or http://");
                }
            }

            Uri uri;
            if (!Uri.TryCreate(text, UriKind.Absolute, out uri)
                || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
            {
                throw Refused("is not a valid address");
            }
            if (uri.UserInfo.Length != 0)
            {
                throw Refused("carries a user name and password (user:password@host); give them as username and password instead");
            }
            if (uri.Fragment.Length != 0)
            {
                throw Refused("has a #fragment");
            }
            if (!(uri.HostNameType == UriHostNameType.Dns
                  || uri.HostNameType == UriHostNameType.IPv4
                  || uri.HostNameType == UriHostNameType.IPv6))
            {
                throw Refused("has no valid host name");
            }
            string query = uri.Query;
            if (query.Length != 0 && !query.Equals("?wsdl", StringComparison.OrdinalIgnoreCase))
            {
                throw Refused("has a query string (only ?wsdl is accepted)");
            }

            string path = uri.AbsolutePath.TrimEnd('/');
            if (path.EndsWith(ServicePath, StringComparison.OrdinalIgnoreCase))
            {
                path = path.Substring(0, path.Length - ServicePath.Length);
            }
            return new Uri(uri.Scheme + "://" + uri.Authority + path + ServicePath, UriKind.Absolute);
        }

        private static ArgumentException Refused(string problem)
        {
            return new ArgumentException(Expected + problem + " (it is not repeated here, as it may hold a password).", "server");
        }
    }
}
