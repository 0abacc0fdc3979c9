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
            + "(for example https://gateway.example.org), not ";

        /// <summary>
        /// The service URL for <paramref name="server"/>. A bare host name means https;
        /// <c>http://</c> only when written out. The full service URL, with or without
        /// <c>?wsdl</c>, is accepted too.
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
                throw Refused("an empty string");
            }
            // An FMS SQL Server instance (SQL01\FMS) or a connection string is the classic
            // mistake: Uri would quietly turn the backslash into a slash.
            foreach (char c in text)
            {
                if (c == '\\' || c == ';' || c == '=' || char.IsWhiteSpace(c) || char.IsControl(c))
                {
                    throw Refused("'" + server + "'");
                }
            }
            int separator = text.IndexOf("://", StringComparison.Ordinal);
            if (separator < 0)
            {
                text = "https://" + text;
            }
            else
            {
                string scheme = text.Substring(0, separator);
                if (!scheme.Equals("https", StringComparison.OrdinalIgnoreCase)
                    && !scheme.Equals("http", StringComparison.OrdinalIgnoreCase))
                {
                    throw Refused("'" + server + "'");
                }
            }

            Uri uri;
            if (!Uri.TryCreate(text, UriKind.Absolute, out uri)
                || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)
                || uri.UserInfo.Length != 0
                || uri.Fragment.Length != 0
                || !(uri.HostNameType == UriHostNameType.Dns
                     || uri.HostNameType == UriHostNameType.IPv4
                     || uri.HostNameType == UriHostNameType.IPv6))
            {
                throw Refused("'" + server + "'");
            }
            string query = uri.Query;
            if (query.Length != 0 && !query.Equals("?wsdl", StringComparison.OrdinalIgnoreCase))
            {
                throw Refused("'" + server + "'");
            }

            string path = uri.AbsolutePath.TrimEnd('/');
            if (path.EndsWith(ServicePath, StringComparison.OrdinalIgnoreCase))
            {
                path = path.Substring(0, path.Length - ServicePath.Length);
            }
            return new Uri(uri.Scheme + "://" + uri.Authority + path + ServicePath, UriKind.Absolute);
        }

        private static ArgumentException Refused(string what)
        {
            return new ArgumentException(Expected + what + ".", "server");
        }
    }
}
